"""De-identification: keys, operators, pseudonyms, the raw vault's encryption, signatures."""
