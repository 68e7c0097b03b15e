"""The export API: signed requests in, signed responses out, every read in the audit log.

`api.app.create_app` builds the FastAPI application, `api.client.HubClient` and
`api.pull.pull_feed` are the consumer's side, `api.consumers` manages who may call.
"""
