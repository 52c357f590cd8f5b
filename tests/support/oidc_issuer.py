#!/usr/bin/env python3
"""A minimal OAuth 2.0 identity provider on loopback for the OAUTHBEARER/OIDC broker test.

Serves a JWKS (GET /jwks) and a token endpoint (POST /token) for the client_credentials grant:
the client id and secret come as HTTP Basic credentials (or form fields), and the access token
is an RS256 JWT (kid, sub = client id, iat, exp, scope) signed with `openssl dgst`, which a Kafka
broker's OAuthBearerValidatorCallbackHandler verifies against the JWKS. Python's standard library
and the openssl command only. Prints the port on its first line once it listens; logs every
token request (grant, client id, scope; never the secret) as a JSON line to --log.
"""

import argparse
import base64
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, help="where the signing key is written")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    key = os.path.join(args.dir, "issuer-key.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    modulus = subprocess.run(
        ["openssl", "rsa", "-in", key, "-noout", "-modulus"],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split("=", 1)[1]
    kid = "kafka-mirrord-test"
    jwks = json.dumps({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": b64url(bytes.fromhex(modulus)), "e": "AQAB",
    }]}).encode()

    def sign(claims: dict) -> str:
        header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
        payload = b64url(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", key],
            input=signing_input, check=True, capture_output=True,
        ).stdout
        return f"{header}.{payload}.{b64url(signature)}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/jwks":
                self.reply(200, jwks)
            else:
                self.reply(404, b"{}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            field = lambda name: form.get(name, [None])[0]
            client_id, secret = field("client_id"), field("client_secret")
            authorization = self.headers.get("Authorization", "")
            if authorization.startswith("Basic "):
                decoded = base64.b64decode(authorization[6:]).decode()
                client_id, _, secret = decoded.partition(":")
            grant = field("grant_type")
            scope = field("scope")
            accepted = (self.path == "/token" and grant == "client_credentials"
                        and client_id == args.client_id and secret == args.client_secret)
            with open(args.log, "a") as log:
                log.write(json.dumps({"path": self.path, "grant_type": grant, "client_id": client_id,
                                      "scope": scope, "accepted": accepted}) + "\n")
            if not accepted:
                self.reply(401, b'{"error":"invalid_client"}')
                return
            now = int(time.time())
            claims = {"sub": client_id, "iat": now, "exp": now + 3600, "scope": scope or ""}
            token = sign(claims)
            self.reply(200, json.dumps({"access_token": token, "token_type": "bearer",
                                        "expires_in": 3600}).encode())

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
