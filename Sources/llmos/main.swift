print("llmos")
