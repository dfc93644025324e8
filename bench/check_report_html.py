"""Render a campaign's HTML report in headless Chromium and check what a reader sees: every section, every
table, and the plot decoded. Prints what it checked; says MISSED and exits non-zero when something is not there.

    python bench/check_report_html.py --db .farm/demo/farm.duckdb [--screenshot /tmp/report.png]

Needs a Chromium on PATH (`apt-get install chromium`), so it is a script, not a test.
"""
import argparse
import html.parser
import pathlib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from farm.storage.report import write_html  # noqa: E402
from farm.storage.store import open_readonly  # noqa: E402

SECTIONS = ("Final confirmation", "Landed", "Progress", "Experiments", "Acceptance", "Artifacts")


class Page(html.parser.HTMLParser):
    """What the rendered DOM holds: headings, table rows, images."""

    def __init__(self):
        super().__init__()
        self.headings, self.rows, self.images, self._tag = [], 0, [], None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        self.rows += tag == "tr"
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_data(self, data):
        if self._tag == "h2" and data.strip():
            self.headings.append(data.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--campaign", help="default: the latest in the store")
    parser.add_argument("--screenshot", help="also save what Chromium drew")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("MISSED: no Chromium on PATH (apt-get install chromium)")
        return 1
    con = open_readonly(args.db)
    newest = "SELECT id FROM campaigns ORDER BY started_at DESC LIMIT 1"
    campaign = args.campaign or con.execute(newest).fetchall()[0][0]
    experiments = con.execute("SELECT count(*) FROM experiments WHERE campaign = ?", [campaign]).fetchall()[0][0]
    with tempfile.TemporaryDirectory() as directory:
        page = write_html(con, campaign, pathlib.Path(directory) / "report.html")
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,3000"]
        dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                             timeout=120).stdout
        if args.screenshot:
            subprocess.run([browser, *flags, f"--screenshot={args.screenshot}", page.as_uri()], capture_output=True,
                           timeout=120)
    seen = Page()
    seen.feed(dom)
    missing = [s for s in SECTIONS if s not in seen.headings]
    plots = [src for src in seen.images if src.startswith("data:image/png;base64,") and len(src) > 10_000]
    print(f"{campaign}: Chromium rendered {len(dom)} characters of DOM; sections {seen.headings}; {seen.rows} table "
          f"rows for {experiments} experiments; {len(plots)} embedded plot(s)")
    if missing or not plots or seen.rows < experiments:
        print(f"MISSED: sections missing {missing}, plots {len(plots)}, rows {seen.rows} < {experiments}?")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
