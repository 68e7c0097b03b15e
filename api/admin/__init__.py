"""The community admins' console under /admin (issue 8): what left the community, to whom,
when and under which rule, for people who do not read code or SQL.

`api.admin.console.install(app, settings)` mounts it on the export API; it signs people in
with its own accounts and sessions (`neuron admins add`), never with consumer keys. This
package's `__init__` stays light: `warehouse.control_models` imports `api.admin.models`.
"""
