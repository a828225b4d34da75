"""``Authorization: Bearer sk-mg-v1-…`` for the management API (/api/v1).

Only management keys are accepted here; a Pay As You Go key calls /v1 and
nothing else, so a leaked PAYG key cannot read balances or mint new keys.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apikeys.models import KeyKind
from apikeys.secrets import PAYG_PREFIX
from apikeys.selectors import api_key_for_secret
from apikeys.services import key_mark_used

# Sent with every 401 of /api/v1 (agipower.api_errors), so that a refused key
# is a 401, not the 403 DRF gives when the first authenticator is the session.
CHALLENGE = 'Bearer realm="api"'


class ManagementKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None  # not ours: the session (or nobody) authenticates
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <key>'."
            )
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid management key.") from None
        if secret.startswith(PAYG_PREFIX):
            raise exceptions.AuthenticationFailed(
                "Pay As You Go keys (sk-ap-v1-…) call /v1 only; "
                "use a management key (sk-mg-v1-…) for /api/v1."
            )
        api_key = api_key_for_secret(secret, kind=KeyKind.MANAGEMENT)
        if api_key is None:
            raise exceptions.AuthenticationFailed(
                "Invalid, disabled or deleted management key."
            )
        user = api_key.account.owner
        if not user.is_active:
            raise exceptions.AuthenticationFailed(
                "The owner of this key is deactivated."
            )
        key_mark_used(api_key=api_key)
        return user, api_key

    def authenticate_header(self, request) -> str:
        return CHALLENGE


class ManagementKeyScheme(OpenApiAuthenticationExtension):
    target_class = ManagementKeyAuthentication
    name = "managementKey"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 (a scheme name, not a secret)
            bearer_format="sk-mg-v1-…",
        )
        scheme["description"] = (
            "A management key made in the console (API Keys → Management keys) "
            'or with POST /api/v1/keys {"kind": "management"}.'
        )
        return scheme
