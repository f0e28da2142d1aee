"""Canaille (PyPI pytest-iam) as a standalone OAuth 2 authorization server on 127.0.0.1, in memory.

usage: python canaille_server.py PORT TOKEN_TTL_SECONDS

Registers three confidential clients:
  scim-provisioner / provisioner-secret  client_credentials, client_secret_basic (the engine)
  scim-poster      / poster-secret       client_credentials, client_secret_post  (the engine)
  scim-target      / target-secret       the resource server, allowed to introspect the tokens
Endpoints: /oauth/token, /oauth/introspect, /oauth/revoke. Prints "ready" once listening.
"""
import datetime
import os
import sys
import uuid

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback

from authlib.oauth2 import rfc6749
from canaille import create_app
from canaille.app import models
from canaille.backends import Backend
from joserfc.jwk import JWKRegistry
import logging

from werkzeug.serving import make_server

# authlib's client credentials grant accepts only client_secret_basic unless told otherwise;
# allow both methods of RFC 6749 §2.3.1 so that each can be tested.
rfc6749.ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
port = int(sys.argv[1])
ttl = int(sys.argv[2])
host = "127.0.0.1"
jwk = JWKRegistry.generate_key("RSA", 2048)
jwk.ensure_kid()
config = {
    "TESTING": True,
    "ENV_FILE": None,
    "SECRET_KEY": str(uuid.uuid4()),
    "WTF_CSRF_ENABLED": False,
    "PREFERRED_URL_SCHEME": "http",
    "SERVER_NAME": f"{host}:{port}",
    "OAUTH2_TOKEN_EXPIRES_IN": {"client_credentials": ttl},
    "CANAILLE": {"DATABASE": "memory", "JAVASCRIPT": False,
                 "ACL": {"DEFAULT": {"PERMISSIONS": ["use_oidc"]}}},
    "CANAILLE_OIDC": {"ACTIVE_JWKS": [jwk.as_dict(private=True)]},
}
app = create_app(config=config)
app.logger.setLevel(logging.ERROR)  # no line per issued token
with app.app_context():
    now = datetime.datetime.now(datetime.UTC)
    target = models.Client(
        client_id="scim-target", client_secret="target-secret", client_name="SCIM target",
        client_id_issued_at=now, grant_types=["client_credentials"], response_types=["token"],
        token_endpoint_auth_method="client_secret_basic", scope=["openid"],
        redirect_uris=[f"http://{host}/unused"])
    Backend.instance.save(target)
    for client_id, secret, method in [
        ("scim-provisioner", "provisioner-secret", "client_secret_basic"),
        ("scim-poster", "poster-secret", "client_secret_post"),
    ]:
        Backend.instance.save(models.Client(
            client_id=client_id, client_secret=secret, client_name=client_id,
            client_id_issued_at=now, audience=[target], grant_types=["client_credentials"],
            response_types=["token"], token_endpoint_auth_method=method,
            scope=["openid", "profile", "email", "groups"],
            redirect_uris=[f"http://{host}/unused"]))

server = make_server(host, port, app, threaded=True)
print("ready", flush=True)
server.serve_forever()
