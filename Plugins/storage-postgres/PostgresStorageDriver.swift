// The postgres storage driver (issue 7): being written.
import LLMOSDriverSDK
