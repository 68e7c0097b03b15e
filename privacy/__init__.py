"""The privacy engine: keys and signatures, operators and sharing policies, sealing to consumers,
k-anonymity, Chinese PII recognisers and scrubbing, consent and retention."""
