import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package root, from the sources (idp/) or the build (dist/idp/): where client/ and fixtures/ are. */
export const PACKAGE_ROOT = ['../', '../../'].map((up) => fileURLToPath(new URL(up, import.meta.url))).find((d) => existsSync(`${d}client/cpsd.js`)) ?? '';
