"""What a stage needs at run time on whichever process or machine runs it: models loaded once, devices."""
