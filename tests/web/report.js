#!/usr/bin/env node
// report.js — report.html in a real browser (Debian's chromium, headless,
// through playwright-core), at about 1,000 and about 20,000 operations:
//
//   node report.js --faultdrill build/sim/faultdrill --drills tests/web/drills --out DIR
//
// Runs `faultdrill run` on report-1k.drill and report-20k.drill into DIR/runs,
// opens each report.html in a laptop-sized window (1366x768) and checks what
// issue 14 asks of the page: the time axis is on screen without scrolling;
// every fault band has a label that sits inside the picture; each operation
// outcome in report.json (ok, rejected, failed, unknown) has its colour; every
// failed or unknown operation keeps a mark of its own (a tick with its tooltip)
// even when 20,000 are drawn as density; the node lanes show the states the
// mirror went through (in sync, leading alone, degraded, down); the invariants'
// paragraphs are quoted; a violation is a red dot on the copy and on the
// operation it concerns, and each step of its story links to a numbered circle
// on the timeline that lights up when followed. Keeps the screenshots as test artifacts:
// DIR/report-1k.png, DIR/report-20k.png (the first screen) and
// DIR/report-*-full.png (the whole page). Exit 0 on success, 1 on any failure.
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const FAULTDRILL = opt('--faultdrill');
const DRILLS = path.resolve(opt('--drills', path.join(__dirname, 'drills')));
const OUT = path.resolve(opt('--out', process.cwd()));
const CHROMIUM = opt('--chromium', process.env.CHROMIUM || '/usr/bin/chromium');
const VIEW = { width: 1366, height: 768 };

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...a);
function expect(cond, msg) { if (!cond) throw new Error(msg); }

function runDrill(name) {
  const runs = path.join(OUT, 'runs');
  fs.rmSync(path.join(runs, name), { recursive: true, force: true });
  const r = spawnSync(FAULTDRILL, ['run', path.join(DRILLS, `${name}.drill`), '--out', runs],
    { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  log(`faultdrill run ${name}: exit ${r.status}: ${(r.stdout || '').trim()}`);
  expect(r.status === 0, `faultdrill run ${name} exited ${r.status}: ${r.stderr}`);
  const dir = path.join(runs, name, fs.readdirSync(path.join(runs, name))[0]);
  return { html: path.join(dir, 'report.html'), json: JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) };
}

function sum(json, key) {
  return Object.entries(json.ops).filter(([k]) => k !== 'total').reduce((n, [, v]) => n + v[key], 0);
}

async function checkReport(browser, name, wantDensity, wantStates) {
  const { html, json } = runDrill(name);
  const total = json.ops.total;
  log(`${name}: ${total} operations, ok ${sum(json, 'ok')}, rejected ${sum(json, 'rejected')}, ` +
      `failed ${sum(json, 'fail')}, unknown ${sum(json, 'unknown')}`);
  const page = await browser.newPage({ viewport: VIEW });
  await page.goto(`file://${html}`);

  // The time axis (its top row of labels) is on the first screen.
  const axis = await page.$$eval('svg.timeline text.axis', (ts) => ts.map((t) => {
    const b = t.getBoundingClientRect(); return { top: b.top, bottom: b.bottom, text: t.textContent };
  }));
  expect(axis.length >= 5, `${name}: only ${axis.length} time labels above the rows`);
  for (const a of axis) expect(a.bottom <= VIEW.height, `${name}: time label ${a.text} below the fold (${a.bottom}px)`);
  const svgBox = await page.$eval('svg.timeline', (s) => { const b = s.getBoundingClientRect(); return { left: b.left, right: b.right, bottom: b.bottom }; });
  expect(svgBox.bottom <= VIEW.height, `${name}: the timeline ends at ${svgBox.bottom}px, below a laptop's screen`);

  // Every fault band is labelled, and the label is inside the picture.
  const faults = await page.$$eval('svg.timeline g.fault', (gs) => gs.map((g) => {
    const t = g.querySelector('text.fault-label'); if (!t) return null;
    const b = t.getBoundingClientRect(); return { text: t.textContent, left: b.left, right: b.right };
  }));
  expect(faults.length === json.faults.length, `${name}: ${faults.length} bands for ${json.faults.length} faults`);
  for (const f of faults) {
    expect(f !== null, `${name}: a fault band without a label`);
    expect(f.left >= svgBox.left && f.right <= svgBox.right, `${name}: label ${f.text} leaves the picture`);
  }

  // The outcomes in their colours; every failed or unknown operation marked on its own.
  const colours = { ok: '#2e9d4f', rejected: '#8c959f', fail: '#d0342c', unknown: '#e0a100' };
  const svg = await page.$eval('svg.timeline', (s) => s.outerHTML);
  for (const [key, colour] of Object.entries(colours)) {
    if (sum(json, key) > 0) expect(svg.includes(colour), `${name}: no ${key} operation drawn (${colour})`);
  }
  const bad = sum(json, 'fail') + sum(json, 'unknown');
  const ticks = await page.$$eval('svg.timeline line > title', (ts) =>
    ts.filter((t) => / · (failed|outcome unknown): #/.test(t.textContent)).length);
  expect(ticks === Math.min(bad, 5000), `${name}: ${ticks} failed/unknown ticks for ${bad} such operations`);
  const density = svg.includes('drawn as their density per');
  expect(density === wantDensity, `${name}: density drawing ${density}, wanted ${wantDensity}`);

  // The node lanes: a state strip per node, in the colours of what happened to it.
  for (const [state, colour] of Object.entries(wantStates)) {
    const n = await page.$$eval(`svg.timeline rect.state[fill="${colour}"]`, (rs) => rs.length);
    expect(n > 0, `${name}: no node lane shows ${state} (${colour})`);
  }

  // The invariants' paragraphs are quoted under their verdicts.
  const quoted = await page.$$eval('blockquote.paragraph', (qs) => qs.length);
  expect(quoted === json.expectations.length, `${name}: ${quoted} paragraphs for ${json.expectations.length} invariants`);

  // A violation: red dots, and a story whose steps light up their circles.
  const violated = json.expectations.filter((e) => e.observed === 'violated');
  if (violated.length > 0) {
    const dots = await page.$$eval('svg.timeline circle.violation', (cs) => cs.length);
    expect(dots >= 2, `${name}: ${dots} violation dots (the copy and the operation)`);
    const links = await page.$$eval('ol.story a', (as) => as.map((a) => a.getAttribute('href')));
    const steps = violated.reduce((n, e) => n + e.story.length, 0);
    expect(links.length === steps && steps >= 3, `${name}: ${links.length} story links for ${steps} steps`);
    for (const href of links) expect(await page.$(href) !== null, `${name}: ${href} has no mark on the timeline`);
    const target = links[links.length - 1];
    await page.click(`ol.story a[href="${target}"]`);
    const lit = await page.$eval(`${target} circle`, (c) => getComputedStyle(c).fill);
    expect(lit === 'rgb(255, 211, 61)', `${name}: the followed story step is not highlighted (${lit})`);
  }

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
  await page.screenshot({ path: path.join(OUT, `${name}-full.png`), fullPage: true });
  log(`${name}: ok; ${path.join(OUT, `${name}.png`)}`);
  await page.close();
}

(async () => {
  let browser = null;
  try {
    expect(FAULTDRILL, 'usage: report.js --faultdrill PATH [--drills DIR] [--out DIR]');
    fs.mkdirSync(OUT, { recursive: true });
    const { chromium } = require('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    // 1k: a degrade mirror that keeps its promises; its lanes show every state it went through
    await checkReport(browser, 'report-1k', false, {
      'in sync': '#b7e4c7', 'leading alone': '#6ea8dc', degraded: '#f0883e', down: '#24292f' });
    // 20k: ack=early loses an order; density, every failure kept, the story of the loss
    await checkReport(browser, 'report-20k', true, { 'in sync': '#b7e4c7', down: '#24292f' });
    await browser.close();
    log('PASS');
    process.exit(0);
  } catch (e) {
    console.error(`FAIL: ${e.message}`);
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
})();
