"""NGSI-LD push: the hub writes its feeds and alarms into a consumer's context broker
(ETSI GS CIM 009 batch upsert and temporal API), under that consumer's sharing policy."""
