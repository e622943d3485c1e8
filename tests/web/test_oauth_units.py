"""The OAuth client's pieces that need no server: JWTs, DPoP proofs, PKCE, client metadata, URL rules."""

from __future__ import annotations

import json
import time

import pytest

from clients.oauth import ClientConfig, SigningKey
from clients.oauth.client import ASSERTION_TYPE, OAuthClient
from clients.oauth.config import client_config, load_keys
from clients.oauth.discovery import AuthServer, check_server_url
from clients.oauth.dpop import NonceCache, make_proof
from clients.oauth.errors import DiscoveryError
from clients.oauth.jwt import JwtError, decode_unverified, sha256_b64url, verify_es256
from models.settings import Settings


def test_es256_jwts_verify_with_the_public_jwk_and_not_after_tampering() -> None:
    key = SigningKey.generate(kid="k1")
    token = key.sign_jwt({"typ": "JWT"}, {"sub": "x", "n": 1})
    assert verify_es256(token, key.public_jwk()) == {"sub": "x", "n": 1}
    head, _body, sig = token.split(".")
    forged = SigningKey.generate().sign_jwt({"typ": "JWT"}, {"sub": "y"}).split(".")[1]
    with pytest.raises(JwtError):
        verify_es256(f"{head}.{forged}.{sig}", key.public_jwk())
    with pytest.raises(JwtError):
        verify_es256(token, SigningKey.generate().public_jwk())


def test_private_jwks_round_trip_and_mismatched_ones_are_refused() -> None:
    key = SigningKey.generate(kid="k1")
    again = SigningKey.from_json(key.to_json())
    assert again.public_jwk() == key.public_jwk() and again.kid == "k1"
    bad = {**key.private_jwk(), "x": SigningKey.generate().public_jwk()["x"]}
    with pytest.raises(ValueError, match="do not match"):
        SigningKey.from_jwk(bad)
    assert "d" not in key.public_jwk()


def test_dpop_proofs_carry_method_url_without_query_nonce_and_token_hash() -> None:
    key = SigningKey.generate()
    proof = make_proof(key, "post", "https://pds.example/xrpc/x?y=1#f", nonce="n1", access_token="tok")
    header, claims = decode_unverified(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}  # the public key only
    assert claims["htm"] == "POST" and claims["htu"] == "https://pds.example/xrpc/x"
    assert claims["nonce"] == "n1" and claims["ath"] == sha256_b64url("tok")
    assert abs(claims["iat"] - time.time()) < 5 and len(claims["jti"]) >= 16
    assert verify_es256(proof, header["jwk"])["htm"] == "POST"
    other = decode_unverified(make_proof(key, "GET", "https://pds.example/"))[1]
    assert "nonce" not in other and "ath" not in other and other["jti"] != claims["jti"]


def test_nonces_are_remembered_per_origin() -> None:
    nonces = NonceCache(max_entries=2)
    nonces.remember("https://a.example/oauth/par", "n-a")
    assert nonces.get("https://A.example/oauth/token") == "n-a"
    assert nonces.get("https://b.example/") is None
    nonces.remember("https://b.example/x", "n-b")
    nonces.remember("https://c.example/x", "n-c")  # evicts the least recently used: a
    assert nonces.get("https://a.example/") is None and nonces.get("https://c.example/") == "n-c"


def test_pkce_s256_is_the_rfc_7636_example() -> None:
    assert (
        sha256_b64url("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_the_loopback_client_id_carries_redirect_uri_and_scope() -> None:
    config = ClientConfig.loopback(
        "http://127.0.0.1:8000/oauth/callback", "atproto repo:com.huddle.slotOffer"
    )
    assert config.client_id == (
        "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Foauth%2Fcallback"
        "&scope=atproto+repo%3Acom.huddle.slotOffer"
    )
    assert not config.confidential and config.metadata()["token_endpoint_auth_method"] == "none"


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_dev_mode_on_a_loopback_url_is_a_loopback_client_with_the_ip_not_localhost() -> None:
    config = client_config(_settings(dev_mode=True, public_url="http://localhost:8123"))
    assert config.redirect_uri == "http://127.0.0.1:8123/oauth/callback"
    assert config.client_id.startswith("http://localhost?")


def test_production_is_a_confidential_client_with_private_key_jwt() -> None:
    key = SigningKey.generate(kid="huddle-1")
    settings = _settings(
        dev_mode=False,
        secret_key="s" * 40,
        token_keys="6Xo7rvw0V3l5b9dYwEYQ0b5gk2rQ8I4qGf8m8mV4b1c=",
        public_url="https://huddle.example",
        oauth_client_keys=json.dumps({"keys": [key.private_jwk()]}),
    )
    config = client_config(settings)
    meta = config.metadata()
    assert meta["client_id"] == "https://huddle.example/oauth-client-metadata.json" == config.client_id
    assert meta["token_endpoint_auth_method"] == "private_key_jwt"
    assert meta["token_endpoint_auth_signing_alg"] == "ES256"
    assert meta["jwks_uri"] == "https://huddle.example/oauth/jwks.json"
    assert meta["redirect_uris"] == ["https://huddle.example/oauth/callback"]
    assert meta["dpop_bound_access_tokens"] is True and meta["application_type"] == "web"
    assert "atproto" in meta["scope"].split()
    assert config.jwks() == {"keys": [key.public_jwk()]} and "d" not in config.jwks()["keys"][0]

    # The assertion the client sends verifies with the served JWKS, for this server only.
    client = OAuthClient(config, discovery=None, http=None)  # type: ignore[arg-type]
    server = AuthServer("https://as.example", "a", "t", "p", None, ("atproto",), {})
    form = client._client_assertion(server)
    assert form["client_assertion_type"] == ASSERTION_TYPE
    header, _ = decode_unverified(form["client_assertion"])
    assert header["kid"] == "huddle-1"
    claims = verify_es256(form["client_assertion"], config.jwks()["keys"][0])
    assert claims["iss"] == claims["sub"] == config.client_id and claims["aud"] == "https://as.example"
    assert claims["exp"] - claims["iat"] <= 60


def test_production_without_keys_says_what_to_set() -> None:
    from clients.oauth import OAuthNotConfigured

    settings = _settings(
        dev_mode=False, secret_key="s" * 40, token_keys="k", public_url="https://huddle.example"
    )
    with pytest.raises(OAuthNotConfigured, match="HUDDLE_OAUTH_CLIENT_KEYS"):
        client_config(settings)
    assert load_keys("") == ()


@pytest.mark.parametrize(
    ("url", "dev", "ok"),
    [
        ("https://pds.example", False, True),
        ("http://pds.example", False, False),
        ("http://localhost:2583", False, False),
        ("http://localhost:2583", True, True),
        ("http://127.0.0.1:2583", True, True),
        ("https://10.0.0.5", False, False),
        ("https://user:pw@pds.example", False, False),
        ("ftp://localhost", True, False),
    ],
)
def test_which_servers_may_be_fetched(url: str, dev: bool, ok: bool) -> None:
    if ok:
        assert check_server_url(url, allow_loopback=dev) == url
    else:
        with pytest.raises(DiscoveryError):
            check_server_url(url, allow_loopback=dev)
