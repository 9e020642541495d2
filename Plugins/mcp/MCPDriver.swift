// issue 9: being written
