"""The OpenID provider of the sign-in tests: npm's oidc-provider (OpenID Certified) run by tests/oidc/provider.js
on 127.0.0.1 (`make oidc-provider` installs it; .ci/run does), started and stopped by the tests themselves.

The provider's own sign-in page (its development interactions) takes any of provider.js's test users by
login name: teacher, casey, unverified, stranger, removed, outsider. No mock: the app talks to it over HTTP.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from live import free_port

HERE = Path(__file__).resolve().parent / "oidc"
SCRIPT = HERE / "provider.js"
INSTALLED = HERE / "node_modules" / "oidc-provider" / "package.json"
NODE = shutil.which("node") or "/usr/bin/node"
CLIENT_ID = "weekly-trends"
CLIENT_SECRET = "weekly-trends-test-secret"
CALLBACK_PATH = "/staff/oidc/callback"
START_TIMEOUT = 20  # seconds


def missing() -> str | None:
    if not Path(NODE).exists():
        return "no node (Debian: apt-get install nodejs npm)"
    if not INSTALLED.exists():
        return f"oidc-provider is not installed in {HERE} (make oidc-provider; .ci/run does)"
    return None


class OidcProvider:
    """One provider process: `with OidcProvider(mode=...) as provider: provider.issuer`. restart() keeps
    its port and issuer (a key rotation: restart(kid="key-2"))."""

    def __init__(self, *, mode: str = "normal", kid: str = "key-1", clock_offset: int = 0, id_token_ttl: int = 3600):
        self.port = free_port()
        # localhost: another site than the app's 127.0.0.1, as a school's provider is
        self.issuer = f"http://localhost:{self.port}"
        self.mode, self.kid, self.clock_offset, self.id_token_ttl = mode, kid, clock_offset, id_token_ttl
        self.process: subprocess.Popen | None = None

    def start(self) -> OidcProvider:
        env = os.environ | {
            "OIDC_PORT": str(self.port),
            "OIDC_ISSUER": self.issuer,
            "OIDC_MODE": self.mode,
            "OIDC_KID": self.kid,
            "OIDC_CLOCK_OFFSET": str(self.clock_offset),
            "OIDC_ID_TOKEN_TTL": str(self.id_token_ttl),
        }
        self.process = subprocess.Popen(
            [NODE, str(SCRIPT)], cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the OpenID provider exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(self.discovery_url, timeout=2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the OpenID provider did not answer within {START_TIMEOUT} s")

    @property
    def discovery_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/openid-configuration"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None:
            self.process.stderr.close()
        self.process = None

    def restart(self, **changes) -> None:
        self.stop()
        for name, value in changes.items():
            setattr(self, name, value)
        self.start()

    def app_settings(self, **extra) -> dict:
        """create_app(test_config)'s keys that make the app sign staff in here."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        } | extra

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


LOGIN_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.I)


def sign_in_at_provider(authorize_url: str, login: str, timeout: float = 10) -> str:
    """What a browser does at the provider: open the authorization URL, sign in as `login` on its page,
    follow its redirects; returns the URL it sends the browser back to (the app's callback)."""
    import requests

    with requests.Session() as browser:
        response = browser.get(authorize_url, allow_redirects=False, timeout=timeout)
        for _ in range(20):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if urlsplit(location).path == CALLBACK_PATH:
                    return location
                response = browser.get(location, allow_redirects=False, timeout=timeout)
                continue
            match = LOGIN_FORM.search(response.text)
            assert response.status_code == 200 and match, (
                f"no sign-in form: {response.status_code} {response.text[:500]}"
            )
            response = browser.post(
                urljoin(response.url, match.group(1)),
                data={"prompt": "login", "login": login, "password": "any"},
                allow_redirects=False,
                timeout=timeout,
            )
        raise AssertionError("the provider did not send the browser back to the app")
