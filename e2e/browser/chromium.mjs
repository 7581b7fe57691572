// How the browser tests reach the console: the running gateway
// (CHIRP_URL), where pictures go (CHIRP_SCREENSHOTS), and Debian's Chromium
// launched headless, with the flags a closed network needs. Shared by every
// test file, so that each says only what it checks.

import { chromium } from 'playwright-core';

export const BASE = process.env.CHIRP_URL;
export const SHOTS = process.env.CHIRP_SCREENSHOTS;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The closed network refuses every host Chromium calls home to: without these
// flags it keeps trying (see /work/shared/BUILD-NOTES.md, "Browser tests").
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'];

/** Debian's Chromium (or CHROMIUM), headless. */
export const launch = () => chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
