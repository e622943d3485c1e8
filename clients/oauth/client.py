"""An ATProto OAuth client: PAR with PKCE S256 and DPoP, code exchange, refresh, revoke, PDS calls.

Two kinds of client, one code path (https://atproto.com/specs/oauth):
- development: a *loopback* client (`http://localhost?redirect_uri=…&scope=…`), public, no keys;
- production: a *confidential* web client whose `client_id` is the URL of its metadata document,
  authenticating with `private_key_jwt` (ES256 assertions, public keys served as a JWKS).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from clients.oauth.discovery import AuthServer, Discovery
from clients.oauth.dpop import NONCE_HEADER, NonceCache, make_proof
from clients.oauth.errors import AuthorizationServerError, CallbackError, OAuthError, PdsRequestError
from clients.oauth.jwt import SigningKey, random_token, sha256_b64url
from models.types import utcnow

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LOOPBACK_CLIENT_ORIGIN = "http://localhost"
METADATA_PATH = "/oauth-client-metadata.json"
JWKS_PATH = "/oauth/jwks.json"
CALLBACK_PATH = "/oauth/callback"


@dataclass(frozen=True)
class ClientConfig:
    """Who Huddle is to authorization servers. With `keys` it is a confidential client."""

    client_id: str
    redirect_uri: str
    scope: str
    keys: tuple[SigningKey, ...] = ()
    client_name: str = "Huddle"
    client_uri: str | None = None
    jwks_uri: str | None = None

    @property
    def confidential(self) -> bool:
        return bool(self.keys)

    @classmethod
    def loopback(cls, redirect_uri: str, scope: str) -> ClientConfig:
        """A development client: its id carries its redirect URI and scope; nothing is served."""
        query = urlencode([("redirect_uri", redirect_uri), ("scope", scope)])
        return cls(client_id=f"{LOOPBACK_CLIENT_ORIGIN}?{query}", redirect_uri=redirect_uri, scope=scope)

    @classmethod
    def web(cls, public_url: str, scope: str, keys: tuple[SigningKey, ...]) -> ClientConfig:
        """A production client: metadata at `<public_url>/oauth-client-metadata.json`, keys in a JWKS."""
        if not keys:
            raise ValueError("a confidential client needs at least one signing key")
        if any(key.kid is None for key in keys):
            raise ValueError("every client signing key needs a kid")
        base = public_url.rstrip("/")
        return cls(
            client_id=f"{base}{METADATA_PATH}",
            redirect_uri=f"{base}{CALLBACK_PATH}",
            scope=scope,
            keys=keys,
            client_uri=base,
            jwks_uri=f"{base}{JWKS_PATH}",
        )

    def metadata(self) -> dict[str, Any]:
        """The client metadata document served at the `client_id` URL."""
        doc: dict[str, Any] = {
            "client_id": self.client_id,
            "client_name": self.client_name,
            "redirect_uris": [self.redirect_uri],
            "scope": self.scope,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "dpop_bound_access_tokens": True,
        }
        if self.confidential:
            doc.update(
                {
                    "application_type": "web",
                    "client_uri": self.client_uri,
                    "token_endpoint_auth_method": "private_key_jwt",
                    "token_endpoint_auth_signing_alg": "ES256",
                    "jwks_uri": self.jwks_uri,
                }
            )
        else:
            doc.update({"application_type": "native", "token_endpoint_auth_method": "none"})
        return doc

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}


@dataclass
class PendingLogin:
    """A login between PAR and the callback: what the callback needs to finish it."""

    state: str
    issuer: str
    code_verifier: str
    dpop_key: SigningKey
    authorize_url: str
    expected_did: str | None = None
    pds_url: str | None = None


@dataclass
class TokenSet:
    """A signed-in account's DPoP-bound tokens."""

    did: str
    issuer: str
    pds_url: str
    access_token: str
    refresh_token: str | None
    scope: str
    expires_at: datetime | None

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at - (now or utcnow()) <= timedelta(seconds=seconds)


class OAuthClient:
    """Talks to authorization servers and PDSes for one ClientConfig; holds no per-user state."""

    def __init__(
        self,
        config: ClientConfig,
        discovery: Discovery,
        http: httpx.AsyncClient,
        nonces: NonceCache | None = None,
    ) -> None:
        self.config = config
        self.discovery = discovery
        self._http = http
        self._nonces = nonces or NonceCache()

    # ------------------------------------------------------------ login

    async def start(self, identifier: str) -> PendingLogin:
        """Resolve what the user typed, push the authorization request (PAR), return where to send them."""
        target = await self.discovery.login_target(identifier)
        server = target.server
        self._check_scope(server)
        key = SigningKey.generate()
        verifier = random_token(48)
        state = random_token(24)
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": self.config.scope,
            "state": state,
            "code_challenge": sha256_b64url(verifier),
            "code_challenge_method": "S256",
        }
        if target.login_hint:
            params["login_hint"] = target.login_hint
        answer = await self._server_post(server, server.par_endpoint, params, key)
        request_uri = answer.get("request_uri")
        if not isinstance(request_uri, str):
            raise AuthorizationServerError("invalid_response", "the PAR answer has no request_uri")
        query = urlencode({"client_id": self.config.client_id, "request_uri": request_uri})
        return PendingLogin(
            state=state,
            issuer=server.issuer,
            code_verifier=verifier,
            dpop_key=key,
            authorize_url=f"{server.authorization_endpoint}?{query}",
            expected_did=target.did,
            pds_url=target.pds_url,
        )

    async def complete(self, pending: PendingLogin, params: dict[str, str]) -> TokenSet:
        """Check the redirect back (state, iss), exchange the code, and verify who signed in."""
        if params.get("state") != pending.state:
            raise CallbackError("this sign-in link does not belong to this login; start again")
        if params.get("iss") != pending.issuer:
            raise CallbackError("the answer did not come from the server the login was sent to")
        if "error" in params:
            raise AuthorizationServerError(params["error"], params.get("error_description", ""))
        code = params.get("code")
        if not code:
            raise CallbackError("the server sent no authorization code")
        server = await self.discovery.auth_server(pending.issuer)
        answer = await self._server_post(
            server,
            server.token_endpoint,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.config.redirect_uri,
                "code_verifier": pending.code_verifier,
                "client_id": self.config.client_id,
            },
            pending.dpop_key,
        )
        did = answer.get("sub")
        if not isinstance(did, str) or not did.startswith("did:"):
            raise AuthorizationServerError("invalid_response", "the token answer names no account (sub)")
        if pending.expected_did is not None and did != pending.expected_did:
            await self._revoke_quietly(server, answer, pending.dpop_key)
            raise CallbackError("you signed in as a different account than the one you asked for")
        try:
            pds_url = await self.discovery.check_subject(did, server.issuer)
        except OAuthError:
            await self._revoke_quietly(server, answer, pending.dpop_key)
            raise
        return self._token_set(answer, did, server.issuer, pds_url)

    async def refresh(self, tokens: TokenSet, key: SigningKey) -> TokenSet:
        """New tokens for the same account; AuthorizationServerError (e.g. invalid_grant) if refused."""
        if tokens.refresh_token is None:
            raise AuthorizationServerError("invalid_grant", "the session has no refresh token")
        server = await self.discovery.auth_server(tokens.issuer)
        answer = await self._server_post(
            server,
            server.token_endpoint,
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "client_id": self.config.client_id,
            },
            key,
        )
        if answer.get("sub") != tokens.did:
            raise AuthorizationServerError("invalid_response", "the refreshed tokens are for another account")
        refreshed = self._token_set(answer, tokens.did, tokens.issuer, tokens.pds_url)
        if refreshed.refresh_token is None:
            refreshed.refresh_token = tokens.refresh_token
        return refreshed

    async def revoke(self, tokens: TokenSet, key: SigningKey) -> None:
        """Revoke the session at its authorization server (refresh token first: it ends the grant)."""
        server = await self.discovery.auth_server(tokens.issuer)
        if server.revocation_endpoint is None:
            return
        for token in (tokens.refresh_token, tokens.access_token):
            if token:
                params = {"token": token, "client_id": self.config.client_id}
                await self._server_post(server, server.revocation_endpoint, params, key, expect_json=False)

    # ------------------------------------------------------------ PDS calls

    async def pds_call(
        self,
        tokens: TokenSet,
        key: SigningKey,
        method: str,
        nsid: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Call an XRPC method on the account's PDS with its DPoP-bound access token.

        Raises SessionExpired-worthy AuthorizationServerError("invalid_token") when the PDS refuses
        the token (the caller refreshes and tries again), PdsRequestError for other XRPC errors.
        """
        url = f"{tokens.pds_url}/xrpc/{nsid}"
        response = await self._send_with_nonce(
            method, url, key, access_token=tokens.access_token, params=params, json=body
        )
        if response.status_code == 401:
            raise AuthorizationServerError("invalid_token", _www_error(response) or "token refused", 401)
        payload = _json_or_none(response)
        if response.status_code >= 400:
            error = payload.get("error", "Error") if isinstance(payload, dict) else "Error"
            message = payload.get("message", "") if isinstance(payload, dict) else response.text[:200]
            raise PdsRequestError(response.status_code, str(error), str(message))
        return payload

    # ------------------------------------------------------------ plumbing

    def _check_scope(self, server: AuthServer) -> None:
        if "atproto" not in self.config.scope.split():
            raise OAuthError("the client's scope must include atproto")

    def _client_assertion(self, server: AuthServer) -> dict[str, str]:
        if not self.config.confidential:
            return {}
        key = self.config.keys[0]
        now = int(time.time())
        assertion = key.sign_jwt(
            {"kid": key.kid, "typ": "JWT"},
            {
                "iss": self.config.client_id,
                "sub": self.config.client_id,
                "aud": server.issuer,
                "jti": random_token(16),
                "iat": now,
                "exp": now + 60,
            },
        )
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}

    async def _server_post(
        self,
        server: AuthServer,
        url: str,
        params: dict[str, str],
        key: SigningKey,
        *,
        expect_json: bool = True,
    ) -> dict[str, Any]:
        # A fresh assertion per attempt: a nonce retry must not replay the first one's jti.
        def form() -> dict[str, str]:
            return {**params, **self._client_assertion(server)}

        response = await self._send_with_nonce("POST", url, key, form=form)
        payload = _json_or_none(response)
        if response.status_code >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            description = payload.get("error_description", "") if isinstance(payload, dict) else ""
            raise AuthorizationServerError(
                str(error or f"http_{response.status_code}"), str(description), response.status_code
            )
        if not expect_json:
            return {}
        if not isinstance(payload, dict):
            raise AuthorizationServerError("invalid_response", f"{url} did not answer a JSON object")
        return payload

    async def _send_with_nonce(
        self,
        method: str,
        url: str,
        key: SigningKey,
        *,
        access_token: str | None = None,
        form: Any = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One request with a DPoP proof; once more with the server's nonce if it asks for one."""
        response = None
        for _attempt in range(2):
            proof = make_proof(key, method, url, nonce=self._nonces.get(url), access_token=access_token)
            headers = {"DPoP": proof, "accept": "application/json"}
            if access_token is not None:
                headers["Authorization"] = f"DPoP {access_token}"
            try:
                response = await self._http.request(
                    method,
                    url,
                    headers=headers,
                    data=form() if callable(form) else form,
                    params=params,
                    json=json,
                )
            except httpx.HTTPError as exc:
                raise OAuthError(f"{url} could not be reached ({type(exc).__name__})") from exc
            self._nonces.remember(url, response.headers.get(NONCE_HEADER))
            if not _asks_for_nonce(response):
                return response
        assert response is not None
        return response

    def _token_set(self, answer: dict[str, Any], did: str, issuer: str, pds_url: str) -> TokenSet:
        if str(answer.get("token_type", "")).lower() != "dpop":
            raise AuthorizationServerError("invalid_response", "the tokens are not DPoP-bound")
        access = answer.get("access_token")
        if not isinstance(access, str):
            raise AuthorizationServerError("invalid_response", "no access_token")
        scope = str(answer.get("scope", ""))
        if "atproto" not in scope.split():
            raise AuthorizationServerError("invalid_response", "the granted scope lacks atproto")
        expires_in = answer.get("expires_in")
        expires_at = utcnow() + timedelta(seconds=expires_in) if isinstance(expires_in, int) else None
        refresh = answer.get("refresh_token")
        return TokenSet(
            did=did,
            issuer=issuer,
            pds_url=pds_url,
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) else None,
            scope=scope,
            expires_at=expires_at,
        )

    async def _revoke_quietly(self, server: AuthServer, answer: dict[str, Any], key: SigningKey) -> None:
        if server.revocation_endpoint is None:
            return
        for name in ("refresh_token", "access_token"):
            token = answer.get(name)
            if isinstance(token, str):
                try:
                    params = {"token": token, "client_id": self.config.client_id}
                    await self._server_post(
                        server, server.revocation_endpoint, params, key, expect_json=False
                    )
                except OAuthError:
                    pass  # the login is refused either way; a token we could not revoke expires


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _www_error(response: httpx.Response) -> str | None:
    header = response.headers.get("WWW-Authenticate", "")
    marker = 'error="'
    if marker not in header:
        return None
    return header.split(marker, 1)[1].split('"', 1)[0]


def _asks_for_nonce(response: httpx.Response) -> bool:
    """`use_dpop_nonce`: from the authorization server as a 400 body, from a PDS as a 401 header."""
    if response.status_code == 400:
        body = _json_or_none(response)
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    if response.status_code == 401:
        return _www_error(response) == "use_dpop_nonce"
    return False
