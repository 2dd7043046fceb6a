"""The console in headless Chromium (scripts/browser-test.sh starts Bulwark and runs this).

Each test drives the browser through WebDriver and checks what a user, or an attacker, would
see: sign-in with password and TOTP, a contact's life from creation to reveal, sign-out;
markup in a name shown as text with no script run; no CSP report across a walk of every
page; an injected inline script blocked and reported; a session revoked elsewhere signed
out. TOTP codes are computed here (RFC 6238, standard library), not by Bulwark.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import struct
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["BULWARK_URL"].rstrip("/")
METRICS = os.environ["BULWARK_METRICS_URL"]
PASSWORD = "correct horse battery staple 7"
COOKIE = "__Host-bulwark_session"
STEP_UP_SECONDS = int(os.environ.get("BULWARK_STEP_UP_SECONDS", "8"))
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"

# Records every CSP violation a page meets, before any of the page's own code runs.
WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation', function (e) {"
    "  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });"
)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(method, path, body=None, token=None):
    request = urllib.request.Request(
        BASE + path, data=None if body is None else json.dumps(body).encode(), method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: {error.code} {error.read()[:300]!r}")


def status_with_cookie(path, cookie):
    """The status of a GET carrying only this session cookie, redirects not followed."""
    request = urllib.request.Request(BASE + path)
    request.add_header("cookie", f"{COOKIE}={cookie}")
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.headers.get("location")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("location")


def totp(secret_b32, at):
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(secret, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset: offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def metric(name):
    with urllib.request.urlopen(METRICS, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for_server():
    for _ in range(300):
        try:
            urllib.request.urlopen(BASE + "/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)


def sign_up(tag):
    """A new tenant's owner, with a password only; their email."""
    email = f"{tag}-{os.getpid()}-{int(time.time() * 1000)}@example.com"
    call("POST", "/api/v1/auth/signup", {"tenant_name": "Browser " + tag, "email": email,
                                          "password": PASSWORD, "display_name": tag.title()})
    return email


class Owner:
    """A tenant owner with TOTP enrolled, signed up through the API."""

    def __init__(self):
        wait_for_server()
        self.email = sign_up("owner")
        _, login = call("POST", "/api/v1/auth/login", {"email": self.email, "password": PASSWORD})
        self.token = login["access_token"]
        call("POST", "/api/v1/auth/step-up", {"password": PASSWORD}, self.token)
        _, setup = call("POST", "/api/v1/auth/mfa/totp/setup", {}, self.token)
        self.secret = setup["secret"]
        self.last_totp_step = int(time.time()) // 30
        _, confirmed = call("POST", "/api/v1/auth/mfa/totp/confirm",
                            {"code": totp(self.secret, time.time())}, self.token)
        self.backup_codes = list(confirmed["backup_codes"])

    def fresh_totp(self):
        """A code of a time step no earlier code used (each step is accepted once)."""
        while int(time.time()) // 30 <= self.last_totp_step:
            time.sleep(0.5)
        self.last_totp_step = int(time.time()) // 30
        return totp(self.secret, time.time())


OWNER = None


def setUpModule():
    global OWNER
    OWNER = Owner()


def browser(width=1280, height=900):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_CSP})
    if width < 500:
        # Headless Chromium's windows are at least 500 px wide: emulate a phone's viewport.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 2, "mobile": True})
    driver.set_page_load_timeout(30)
    return driver


class ConsoleTest(unittest.TestCase):
    def setUp(self):
        self.driver = browser()

    def tearDown(self):
        self.driver.quit()

    # --- helpers ------------------------------------------------------------------------
    def h1(self):
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def fill(self, name, value):
        field = self.driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)

    def navigate(self, element):
        """Clicks and waits for the next page (the old one's elements go stale)."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        self.wait_until_gone(page)

    def wait_until_gone(self, page):
        """Until the old page's root is gone (Chromium reports that in more than one way)."""
        def gone(_):
            try:
                page.is_enabled()
                return False
            except WebDriverException:
                return True
        WebDriverWait(self.driver, 15).until(gone)

    def submit(self, label):
        self.navigate(self.driver.find_element(By.XPATH, f"//main//button[normalize-space()='{label}']"))

    def sign_out(self):
        self.navigate(self.driver.find_element(By.XPATH, "//header//button[normalize-space()='Sign out']"))

    def link(self, text):
        self.navigate(self.driver.find_element(By.LINK_TEXT, text))

    def no_csp_violations(self):
        violations = self.driver.execute_script("return window.__csp || []")
        self.assertEqual(violations, [], f"CSP violations on {self.driver.current_url}")

    def no_dialog(self):
        with self.assertRaises(NoAlertPresentException):
            self.driver.switch_to.alert.text

    def session_cookie(self):
        return self.driver.get_cookie(COOKIE)

    def sign_in(self, second_factor=None, email=None):
        self.driver.get(BASE + "/")
        self.assertTrue(self.driver.current_url.startswith(BASE + "/login"))
        self.assertEqual(self.h1(), "Sign in")
        self.fill("email", email or OWNER.email)
        self.fill("password", PASSWORD)
        self.submit("Sign in")
        if email is None:
            self.assertEqual(self.h1(), "Second factor")
            self.fill("code", second_factor or OWNER.backup_codes.pop())
            self.submit("Continue")
        self.assertEqual(self.h1(), "Dashboard")

    def create_contact(self, **fields):
        self.driver.get(BASE + "/contacts")
        self.link("New contact")
        self.assertEqual(self.h1(), "New contact")
        for name, value in fields.items():
            self.fill(name, value)
        self.submit("Save")

    # --- tests --------------------------------------------------------------------------
    def test_sign_in_create_find_edit_reveal_and_sign_out(self):
        self.sign_in(OWNER.fresh_totp())
        cookie = self.session_cookie()
        self.assertIsNotNone(cookie, "the session cookie")
        self.assertTrue(cookie["secure"] and cookie["httpOnly"], cookie)
        self.assertEqual((cookie["sameSite"], cookie["path"]), ("Strict", "/"))
        self.assertNotIn(COOKIE, self.driver.execute_script("return document.cookie"))

        email = f"grace-{int(time.time() * 1000)}@example.com"
        self.create_contact(first_name="Grace", last_name="Hopper", email=email, ssn="123-45-6789")
        self.assertEqual(self.h1(), "Grace Hopper")
        ssn = self.driver.find_element(By.ID, "field-ssn").text
        self.assertNotIn("123-45", ssn, "masked on the detail page")
        self.assertTrue(ssn.endswith("6789"), ssn)

        self.driver.get(BASE + "/contacts")
        self.fill("q", email.upper())
        self.submit("Search")
        self.link("Grace")
        self.assertEqual(self.h1(), "Grace Hopper")

        self.link("Edit")
        self.fill("last_name", "Hopper-Murray")
        self.submit("Save")
        self.assertEqual(self.h1(), "Grace Hopper-Murray")

        # The sign-in's second factor counted as a step-up for a few seconds; wait it out,
        # so the reveal must ask for a new one.
        time.sleep(STEP_UP_SECONDS + 0.5)
        self.link("Reveal sensitive fields")
        self.assertEqual(self.h1(), "Confirm it is you")
        self.assertNotIn("123-45-6789", self.driver.page_source)
        before = self.session_cookie()["value"]
        self.fill("code", OWNER.backup_codes.pop())
        self.submit("Confirm")
        self.assertEqual(self.driver.find_element(By.ID, "field-ssn").text, "123-45-6789")
        after = self.session_cookie()["value"]
        self.assertNotEqual(before, after, "a step-up issues a new session cookie")
        self.assertEqual(status_with_cookie("/", before)[0], 303, "the old cookie is refused")

        self.sign_out()
        self.assertEqual(self.h1(), "Sign in")
        self.assertIsNone(self.session_cookie())
        status, location = status_with_cookie("/", after)
        self.assertEqual((status, location), (303, "/login?next=%2F"), "refused after sign-out")
        self.no_csp_violations()

    def test_markup_in_a_name_is_text_and_runs_nothing(self):
        self.sign_in()
        self.create_contact(first_name=XSS, last_name="Mallory")
        self.no_dialog()
        detail = self.driver.current_url
        for url in (detail, BASE + "/contacts", BASE + "/"):
            self.driver.get(url)
            self.no_dialog()
            main = self.driver.find_element(By.TAG_NAME, "main")
            self.assertIn(XSS, main.text, f"shown as text on {url}")
            injected = self.driver.execute_script(
                "return document.querySelectorAll('main img, main script').length")
            self.assertEqual(injected, 0, f"no element was injected on {url}")
            self.no_csp_violations()

    def test_no_csp_report_across_every_page(self):
        before = metric("csp_violations_total")
        self.sign_in()
        self.create_contact(first_name="Walk", last_name="Through")
        detail = self.driver.current_url
        pages = [BASE + "/", BASE + "/contacts", BASE + "/contacts/new", detail, detail + "/edit",
                 BASE + "/account/sessions", BASE + "/step-up"]
        nav = [a.get_attribute("href") for a in self.driver.find_elements(By.CSS_SELECTOR, "header nav a")]
        self.assertGreaterEqual(len(nav), 3, "the navigation lists the pages")
        for url in pages + nav:
            self.driver.get(url)
            self.assertEqual(len(self.driver.find_elements(By.TAG_NAME, "h1")), 1, url)
            self.no_csp_violations()
            self.assertEqual(self.driver.execute_script(
                "return document.querySelectorAll('[style], [onclick], [onload], [onerror]').length"), 0, url)
        self.sign_out()
        self.no_csp_violations()
        errors = [entry["message"] for entry in self.driver.get_log("browser")
                  if "Content Security Policy" in entry["message"]]
        self.assertEqual(errors, [])
        time.sleep(1)
        self.assertEqual(metric("csp_violations_total"), before, "no report reached the server")

    def test_an_injected_inline_script_is_blocked_and_reported(self):
        proxy = InjectingProxy(BASE)
        try:
            before = metric("csp_violations_total")
            self.driver.get(proxy.url + "/login")
            self.assertEqual(self.h1(), "Sign in")
            self.assertIsNone(self.driver.execute_script("return window.__injected"),
                              "the injected script did not run")
            violations = self.driver.execute_script("return window.__csp")
            self.assertTrue(any(v.startswith("script-src") for v in violations), violations)
            deadline = time.time() + 10
            while metric("csp_violations_total") <= before and time.time() < deadline:
                time.sleep(0.2)
            self.assertGreater(metric("csp_violations_total"), before, "the report reached the server")
        finally:
            proxy.close()

    def test_a_session_revoked_elsewhere_is_signed_out(self):
        email = sign_up("revoked")
        self.sign_in(email=email)
        _, login = call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
        token = login["access_token"]
        _, sessions = call("GET", "/api/v1/auth/sessions", token=token)
        console = [s for s in sessions["items"] if not s["current"]]
        self.assertEqual(len(console), 1, "the console session is listed among the user's devices")
        call("DELETE", f"/api/v1/auth/sessions/{console[0]['id']}", token=token)
        time.sleep(1)
        self.driver.get(BASE + "/contacts")
        self.assertEqual(self.h1(), "Sign in")

    def test_pages_fit_a_narrow_screen(self):
        self.driver.quit()
        self.driver = browser(360, 740)
        self.sign_in()
        for path in ("/", "/contacts", "/contacts/new", "/account/sessions"):
            self.driver.get(BASE + path)
            width = self.driver.execute_script("return document.documentElement.scrollWidth")
            self.assertLessEqual(width, 360, f"no sideways scrolling on {path}")


    def test_totp_enrolment_with_the_qr_code_drawn_by_the_server(self):
        email = sign_up("enrol")
        self.sign_in(email=email)
        self.driver.get(BASE + "/account/security")
        self.assertEqual(self.h1(), "My security")
        self.fill("password", PASSWORD)
        self.submit("Confirm password")
        self.submit("Set up an authenticator app")
        self.assertEqual(self.h1(), "Set up an authenticator app")
        qr = self.driver.find_element(By.CSS_SELECTOR, ".qr svg")
        self.assertGreaterEqual(qr.size["width"], 200, "the QR code is drawn")
        secret = self.driver.find_element(By.CSS_SELECTOR, "code.secret").text
        self.fill("code", totp(secret, time.time()))
        self.submit("Turn on")
        self.assertEqual(self.h1(), "Backup codes")
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, ".codes code")), 10)
        self.no_csp_violations()

    def test_a_passkey_is_added_and_then_signs_in_alone(self):
        options = VirtualAuthenticatorOptions()
        options.protocol = Protocol.CTAP2
        options.transport = Transport.INTERNAL
        options.has_resident_key = True
        options.has_user_verification = True
        options.is_user_verified = True
        self.driver.add_virtual_authenticator(options)
        self.sign_in()
        # Enrolling a second factor needs a fresh step-up.
        self.driver.get(BASE + "/step-up?next=%2Faccount%2Fsecurity")
        self.fill("code", OWNER.backup_codes.pop())
        self.submit("Confirm")
        self.assertEqual(self.h1(), "My security")
        page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.ID, "add-passkey").click()
        self.wait_until_gone(page)
        self.assertEqual(self.h1(), "My security")
        self.assertIn("Passkey", self.driver.find_element(By.TAG_NAME, "main").text)
        self.assertEqual(len(self.driver.get_credentials()), 1)
        self.sign_out()
        self.assertEqual(self.h1(), "Sign in")
        page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.ID, "passkey-sign-in").click()
        self.wait_until_gone(page)
        self.assertEqual(self.h1(), "Dashboard")
        self.assertIsNotNone(self.session_cookie())
        self.no_csp_violations()


    @unittest.skipUnless(os.environ.get("BULWARK_TEST_INTEGRATIONS_URL"), "the test OAuth server is not running")
    def test_connecting_google_survives_the_cross_site_return(self):
        email = sign_up("oauth")
        self.sign_in(email=email)
        self.driver.get(BASE + "/integrations")
        self.assertEqual(self.h1(), "Integrations")
        # Connect → the provider (which consents at once) → back cross-site without the
        # strict cookie → forwarded same-site → finished with the session.
        self.driver.find_element(By.XPATH, "//main//button[normalize-space()='Connect google']").click()
        WebDriverWait(self.driver, 20).until(lambda d: "connected=google" in d.current_url)
        self.assertIn("google is connected", self.driver.find_element(By.TAG_NAME, "main").text)
        self.assertIn("ada@example.com", self.driver.find_element(By.TAG_NAME, "main").text)
        self.no_csp_violations()

    def test_a_form_on_another_site_is_refused_and_changes_nothing(self):
        self.sign_in()
        self.driver.get(BASE + "/contacts/new")
        token = self.driver.find_element(By.NAME, "csrf_token").get_attribute("value")
        self.assertTrue(token, "the form carries a CSRF token")
        forged = f"forged-{int(time.time() * 1000)}@example.com"
        # Once without a token, once with this session's own token (as if stolen): the
        # request's origin alone refuses it, before the session is looked at.
        for hidden in ("", f'<input type="hidden" name="csrf_token" value="{token}">'):
            attacker = Site({"/": (
                f'<!doctype html><title>Win a prize</title><form method="post" action="{BASE}/contacts">'
                f'{hidden}<input name="first_name" value="Forged"><input name="email" value="{forged}">'
                '</form><script>document.forms[0].submit()</script>')})
            try:
                self.driver.get(attacker.url + "/")
                WebDriverWait(self.driver, 15).until(lambda d: d.current_url.startswith(BASE))
                self.assertEqual(self.h1(), "Forbidden")
                self.assertIn("did not come from this site", self.driver.find_element(By.TAG_NAME, "main").text)
            finally:
                attacker.close()
        self.driver.get(BASE + "/contacts")
        self.fill("q", forged)
        self.submit("Search")
        self.assertNotIn("Forged", self.driver.find_element(By.TAG_NAME, "main").text, "no contact was created")

    def test_no_page_can_be_framed_by_another_site(self):
        self.sign_in()
        attacker = Site({
            "/": (f'<!doctype html><title>Frames</title><iframe name="own" src="/own"></iframe>'
                  f'<iframe name="login" src="{BASE}/login"></iframe>'
                  f'<iframe name="contacts" src="{BASE}/contacts"></iframe>'),
            "/own": "<!doctype html><title>Own</title><h1>Own</h1>",
        })
        try:
            self.driver.get(attacker.url + "/")
            # The attacker's own frame loads: the check below can see a loaded frame.
            self.driver.switch_to.frame("own")
            self.assertEqual(self.h1(), "Own")
            for name in ("login", "contacts"):
                self.driver.switch_to.default_content()
                self.driver.switch_to.frame(name)
                # (Chromium puts its own error page there: no Bulwark heading or form.)
                headings = [h.text for h in self.driver.find_elements(By.TAG_NAME, "h1")]
                self.assertNotIn("Sign in", headings, f"{name} is not shown in a frame")
                self.assertEqual(self.driver.find_elements(By.NAME, "email"), [], f"{name} has no form in a frame")
            self.driver.switch_to.default_content()
            refusals = [entry["message"] for entry in self.driver.get_log("browser")
                        if "frame-ancestors" in entry["message"]]
            self.assertGreaterEqual(len(refusals), 2, "the browser refused both frames by policy")
        finally:
            attacker.close()

    def test_every_page_passes_axe_without_a_serious_violation(self):
        with open(os.environ["AXE_JS"], encoding="utf-8") as source:
            axe = source.read()
        self.driver.set_script_timeout(60)
        shots = os.environ.get("BULWARK_SCREENSHOTS")

        def check(name=None):
            self.driver.execute_script(axe)
            found = self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']}).then("
                "  r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')"
                "    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))),"
                "  e => done(['axe failed: ' + e]));")
            self.assertEqual(found, [], f"axe on {self.driver.current_url}")
            if shots and name:
                os.makedirs(shots, exist_ok=True)
                self.driver.save_screenshot(os.path.join(shots, name + ".png"))

        for path in ("/login", "/signup", "/forgot-password"):
            self.driver.get(BASE + path)
            check()
        email = sign_up("axe")
        _, login = call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
        token = login["access_token"]
        people = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing"), ("Katherine", "Johnson"),
                  ("Edsger", "Dijkstra"), ("Barbara", "Liskov")]
        for first, last in people:
            call("POST", "/api/v1/contacts", {"first_name": first, "last_name": last, "ssn": "123-45-6789",
                                              "email": f"{first.lower()}@example.com"}, token)
        _, company = call("POST", "/api/v1/companies", {"name": "Analytical Engines Ltd"}, token)
        _, pipeline = call("POST", "/api/v1/pipelines", {"name": "Sales", "stages": [
            {"name": "Qualified"}, {"name": "Proposal"}, {"name": "Negotiation"},
            {"name": "Won", "kind": "won"}]}, token)
        stages = [stage["id"] for stage in pipeline["stages"]]
        for n, title in enumerate(["Difference engine", "Compiler licence", "Bombe upgrade",
                                   "Orbit tables", "Semaphore audit", "CLU training"]):
            _, deal = call("POST", "/api/v1/deals", {"title": title, "pipeline_id": pipeline["id"],
                                                     "currency": "EUR", "amount_minor": (n + 1) * 125_000,
                                                     "company_id": company["id"]}, token)
            call("PATCH", f"/api/v1/deals/{deal['id']}", {"stage_id": stages[n % len(stages)]}, token)
        call("POST", "/api/v1/tasks", {"title": "Send the proposal", "due_date": time.strftime(
            "%Y-%m-%d", time.gmtime(time.time() + 86400))}, token)

        self.sign_in(email=email)
        check("dashboard")
        self.driver.get(BASE + "/contacts")
        check("contacts")
        self.link("Ada")
        check("contact")
        self.driver.get(BASE + "/deals")
        check("deals")
        self.driver.get(BASE + "/account/security")
        check("security")
        nav = [a.get_attribute("href") for a in self.driver.find_elements(By.CSS_SELECTOR, "header nav a")]
        for url in nav + [BASE + "/contacts/new", BASE + "/deals/new", BASE + "/step-up"]:
            self.driver.get(url)
            check()


class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """A server on another site (127.0.0.1 is not the same site as localhost) with `handler`."""

    def __init__(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class InjectingProxy(Server):
    """A man in the middle that adds an inline script without the nonce to every page, as a
    template bug or a stored injection would: the policy must stop it and report it."""

    SCRIPT = b"<script>window.__injected = true;</script>"

    def __init__(self, upstream):
        target = urllib.parse.urlsplit(upstream)
        script = self.SCRIPT

        class Handler(Quiet):
            def forward(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if response.getheader("content-type", "").startswith("text/html"):
                    payload = re.sub(rb"<main>", b"<main>" + script, payload, count=1)
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = forward
            do_POST = forward

        super().__init__(Handler)


class Site(Server):
    """Another site serving fixed pages."""

    def __init__(self, pages):
        class Handler(Quiet):
            def do_GET(self):
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


if __name__ == "__main__":
    unittest.main()
