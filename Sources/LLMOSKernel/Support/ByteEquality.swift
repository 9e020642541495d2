extension String {
    /// Equality of the UTF-8 bytes. Swift's `==` treats canonically equivalent strings as
    /// equal ("café" in NFC and in NFD), but on Linux those name two different files:
    /// every comparison of a resource name must use this.
    @inline(__always)
    func sameBytes(as other: String) -> Bool { utf8.elementsEqual(other.utf8) }
}
