import CLLMOS
