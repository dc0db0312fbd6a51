"""Deploying built apps: Cloudflare Workers (static assets + a generated Worker) or a local bundle.

The deployer takes an output manifest (a Tree) and a blob reader, nothing
else of the store; it never writes into the store and never logs a token or a
secret. ``deployer.Deployer`` is the entry point; the other modules each do one
job (names, asset manifest, Worker module, Cloudflare API, R2, local bundle).
"""

from cached.deploy.errors import DeployError, DeployInvalid, DeployUnavailable
from cached.deploy.names import script_name

__all__ = ["DeployError", "DeployInvalid", "DeployUnavailable", "script_name"]
