#include "CLLMOSSystem.h"
