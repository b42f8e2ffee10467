"""The waiting page in a real browser: Debian's Chromium, headless, driven
by Selenium through Debian's chromedriver (no driver download).

  waiting_page.py URL SCREENSHOT_PNG [ACCEPT_LANGUAGE]

Prints one JSON line once the page shows the patient waiting (its language,
direction, texts and layout as rendered), saves the screenshot, then — the
test admits the patient meanwhile — a second line once the page has moved
on to the consultation (the URL the browser was sent to). Exits non-zero
with the reason when either does not happen within 30 seconds.
"""
import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def browser(accept_language: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=420,760", f"--user-data-dir={tempfile.mkdtemp()}", f"--lang={accept_language}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": accept_language})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def wait_for(driver, what, check, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    state = driver.execute_script("return document.body && [document.body.dataset.state, document.body.innerText]")
    console = [e.get("message") for e in driver.get_log("browser")]
    raise SystemExit(f"timed out waiting for {what}; the page: {state}; its console: {console}")


def main() -> None:
    url, screenshot = sys.argv[1], sys.argv[2]
    accept_language = sys.argv[3] if len(sys.argv) > 3 else "en"
    driver = browser(accept_language)
    try:
        driver.get(url)
        wait_for(driver, "the waiting state", lambda: driver.execute_script("return document.body.dataset.state") == "waiting")
        seen = driver.execute_script("""
            const h1 = document.querySelector('h1'), main = document.querySelector('main');
            const cs = getComputedStyle(h1);
            return {
              lang: document.documentElement.lang, dir: document.documentElement.dir,
              direction: getComputedStyle(main).direction, title: document.title,
              status: document.getElementById('status').textContent,
              note: document.getElementById('note').textContent,
              phone: document.getElementById('phone').hidden ? null : document.getElementById('phone').innerText,
              phoneNumbersLtr: [...document.querySelectorAll('#phone bdi')].every(b => {
                // As drawn: the first character left of the last one.
                const text = b.firstChild, at = (i) => {
                  const r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + 1);
                  return r.getBoundingClientRect().left;
                };
                return at(0) < at(text.length - 1);
              }),
              borderRight: parseFloat(cs.borderRightWidth), borderLeft: parseFloat(cs.borderLeftWidth),
              textRight: Math.round(h1.getBoundingClientRect().right), mainRight: Math.round(main.getBoundingClientRect().right),
              overflow: document.documentElement.scrollWidth > window.innerWidth,
            };""")
        driver.save_screenshot(screenshot)
        print(json.dumps(seen), flush=True)

        def sent_on():
            for entry in driver.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                if message.get("method") == "Network.requestWillBeSent":
                    target = message["params"]["request"]["url"]
                    if target.startswith("http") and not target.startswith(url.split("/j/")[0]):
                        return target
            return None
        target = wait_for(driver, "the move to the consultation", sent_on)
        print(json.dumps({"movedTo": target}), flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
