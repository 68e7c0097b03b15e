"""The GA/T 1400 (VIID) cascade: the hub as a lower platform of public security's 视图库."""
