// Drives Debian's chromium through Berth's web UI with playwright-core, as a person would:
// sign in, search, open a repository and a manifest, delete a tag as an allowed user, fail
// to as a refused one, and look at what each user may see. Saves a screenshot of every page.
//
// Run by tests/ui_browser.rs, which starts Berth, pushes images with docker, and passes
// what to check in environment variables. Prints one JSON object on stdout (what it saw);
// the Rust test asserts on it. Exits non-zero, with the reason on stderr, when a step fails.

import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
};

const base = env("BERTH_URL");
const password = env("BERTH_PASSWORD");
const repository = env("BERTH_REPOSITORY"); // pushed by docker, tags :v1 and :old
const notes = env("BERTH_NOTES_REPOSITORY"); // label and annotation with <script>
const notesDigest = env("BERTH_NOTES_DIGEST");
const shots = env("BERTH_SCREENSHOTS");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

fs.mkdirSync(shots, { recursive: true });
const result = { dialogs: [], consoleErrors: [] };
const contexts = [];
const profiles = [];

// Each visitor gets a browser of their own with a fresh profile, so cookies never mix.
async function newPage(viewport = { width: 1280, height: 900 }) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "berth-chromium-"));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  contexts.push(context);
  const page = context.pages()[0] || (await context.newPage());
  page.on("dialog", async (dialog) => {
    result.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.on("console", (message) => {
    // Error statuses the test provokes (401, 403, 404) are logged too; those are expected.
    const text = message.text();
    if (message.type() === "error" && !text.startsWith("Failed to load resource")) {
      result.consoleErrors.push(text);
    }
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function listed(page) {
  return page.$$eval("#repositories tbody tr", (rows) =>
    rows.map((row) => row.getAttribute("data-repository")));
}

async function signIn(page, user) {
  await page.goto(`${base}/ui/login`);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/ui/`), page.click("#signin")]);
}

try {
  // Anonymous visitors see what anonymous pull allows: nothing here.
  const anonymous = await newPage();
  await anonymous.goto(`${base}/ui/`);
  result.anonymousRepositories = await listed(anonymous);
  result.anonymousText = await anonymous.textContent("main");
  await shot(anonymous, "01-anonymous");

  // Sign in as alice.
  const alice = await newPage();
  await alice.goto(`${base}/ui/login`);
  await alice.fill("#username", "alice");
  await shot(alice, "02-sign-in");
  await alice.fill("#password", "wrong password");
  await alice.click("#signin");
  result.wrongPasswordAlert = await alice.textContent("[role=alert]");
  await signIn(alice, "alice");
  result.aliceRepositories = await listed(alice);
  await shot(alice, "03-repositories");

  // Search from the header box, then narrow by prefix.
  const word = repository.split("/").pop();
  await alice.fill("#top-q", word);
  await Promise.all([alice.waitForURL(/q=/), alice.press("#top-q", "Enter")]);
  result.searchContains = await listed(alice);
  await shot(alice, "04-search");
  await Promise.all([alice.waitForURL(/match=prefix/), alice.selectOption("#match", "prefix")]);
  result.searchPrefix = await listed(alice);

  // Open the repository from the list.
  await alice.fill("#q", repository.split("/")[0]);
  await Promise.all([alice.waitForLoadState("load"), alice.press("#q", "Enter")]);
  await Promise.all([
    alice.waitForURL(`${base}/ui/repo/${repository}`),
    alice.click(`#repositories a[href="/ui/repo/${repository}"]`),
  ]);
  result.tags = await alice.$$eval("#tags tbody tr", (rows) =>
    rows.map((row) => row.getAttribute("data-tag")));
  result.pullLine = await alice.textContent(`#tags tr[data-tag="v1"] .pull code`);
  result.copyButtonShown = await alice.isVisible(`#tags tr[data-tag="v1"] button.copy`);
  await shot(alice, "05-repository");

  // Open the manifest of v1 and read its layers.
  await Promise.all([
    alice.waitForURL(/\/-\/manifest\//),
    alice.click(`#tags tr[data-tag="v1"] a.digest`),
  ]);
  result.manifestDigest = await alice.textContent("#digest");
  result.layers = await alice.$$eval("#layers tbody tr", (rows) =>
    rows.map((row) => row.getAttribute("data-digest")));
  result.platform = await alice.textContent("#platform");
  await shot(alice, "06-manifest");

  // Labels and annotations holding <script> show as text and run nothing.
  await alice.goto(`${base}/ui/repo/${notes}/-/manifest/${notesDigest}`);
  result.injection = {
    labels: await alice.textContent("#labels"),
    annotations: await alice.textContent("#annotations"),
    scripts: await alice.$$eval("script", (scripts) => scripts.map((s) => s.src)),
    pwned: await alice.evaluate(() => window.pwned === true),
  };
  await shot(alice, "07-injection");

  // Delete :old as alice, through the confirmation step.
  await alice.goto(`${base}/ui/repo/${repository}`);
  await Promise.all([
    alice.waitForURL(/\/-\/delete\?tag=old/),
    alice.click(`#tags tr[data-tag="old"] a.danger-link`),
  ]);
  await shot(alice, "08-confirm-delete");
  await Promise.all([alice.waitForURL(/deleted=old/), alice.click("#confirm-delete")]);
  result.deletedNotice = await alice.textContent("[role=status].notice");
  result.tagsAfterDelete = await alice.$$eval("#tags tbody tr", (rows) =>
    rows.map((row) => row.getAttribute("data-tag")));
  await shot(alice, "09-deleted");

  // A phone-sized look at the repository page.
  const phone = await newPage({ width: 390, height: 844 });
  await signIn(phone, "alice");
  await phone.goto(`${base}/ui/repo/${repository}`);
  result.phoneOverflow = await phone.evaluate(() =>
    document.documentElement.scrollWidth > window.innerWidth + 1);
  await shot(phone, "10-phone-repository");

  // bob may pull this repository but not delete, and must not see the hidden one.
  const bob = await newPage();
  await signIn(bob, "bob");
  result.bobRepositories = await listed(bob);
  await shot(bob, "11-bob-repositories");
  await bob.goto(`${base}/ui/repo/${repository}`);
  result.bobDeleteLinks = await bob.$$eval("a.danger-link", (links) => links.length);
  const refused = await bob.goto(`${base}/ui/repo/${repository}/-/delete?tag=v1`);
  result.bobConfirmStatus = refused.status();
  await shot(bob, "12-bob-refused");
  // Even a hand-made form post with bob's own token is refused.
  await bob.goto(`${base}/ui/`);
  const csrf = await bob.getAttribute("input[name=csrf]", "value");
  result.bobPostStatus = await bob.evaluate(async ({ target, csrf }) => {
    const body = new URLSearchParams({ csrf, tag: "v1" });
    const response = await fetch(target, { method: "POST", body, redirect: "manual" });
    return response.status;
  }, { target: `${base}/ui/repo/${repository}/-/delete`, csrf });
  const hidden = await bob.goto(`${base}/ui/repo/${env("BERTH_HIDDEN_REPOSITORY")}`);
  result.bobHiddenStatus = hidden.status();
  await bob.goto(`${base}/ui/repo/${repository}`);
  result.bobTags = await bob.$$eval("#tags tbody tr", (rows) =>
    rows.map((row) => row.getAttribute("data-tag")));

  // Sign out.
  await Promise.all([alice.waitForURL(`${base}/ui/`), alice.click("button.link")]);
  result.signedOut = !(await alice.textContent("header")).includes("Signed in as");

  process.stdout.write(JSON.stringify(result) + "\n");
} catch (error) {
  process.stderr.write(`browser test failed: ${error.stack || error}\n`);
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = 1;
} finally {
  for (const context of contexts) await context.close();
  for (const profile of profiles) fs.rmSync(profile, { recursive: true, force: true });
}
