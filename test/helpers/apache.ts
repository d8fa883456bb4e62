/**
 * Apache httpd with mod_auth_openidc (Debian's apache2 and libapache2-mod-auth-openidc): a relying party
 * that nobody here wrote, with back-channel logout at its redirect URI (`?logout=backchannel`). Its
 * OIDC settings are docs/idp.md's example (the block after `<!-- idp-apache-example -->`), with the
 * example's host names replaced by the test's; the rest (modules, ports, files) is this harness's.
 * /protected/ is its protected page (the holder's name through SSI), /loggedout.html its logged-out page.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { ClientMetadata } from 'oidc-provider';
import { ROOT } from './doc-blocks.js';

const MODULES = '/usr/lib/apache2/modules';
export const APACHE = process.env.APACHE_PATH ?? '/usr/sbin/apache2';

/** The example's names, replaced by the test's. */
export const DOC_IDP = 'https://idp.hopital.example';
export const DOC_APP = 'https://intranet.hopital.example';

/** The fenced block right after `marker` in docs/idp.md. */
export function docBlock(marker: string): string {
  const doc = readFileSync(join(ROOT, 'docs', 'idp.md'), 'utf8');
  const at = doc.indexOf(marker);
  if (at < 0) throw new Error(`docs/idp.md has no ${marker}`);
  const block = /^\s*```[a-z]*\n([\s\S]*?)\n```/.exec(doc.slice(at + marker.length));
  if (!block) throw new Error(`docs/idp.md: no fenced block right after ${marker}`);
  return block[1] ?? '';
}

/** The client metadata of the Apache application in cpsd-idp: docs/idp.md's `intranet` client, at `origin`. */
export function apacheClient(origin: string): ClientMetadata {
  return JSON.parse(docBlock('<!-- idp-apache-client -->').replaceAll(DOC_APP, origin)) as ClientMetadata;
}

export interface ApacheRp {
  origin: string;
  /** mod_auth_openidc's own logout: its session, then the IdP's end_session with id_token_hint. */
  logoutUrl: string;
  stop(): Promise<void>;
  /** The error log (mod_auth_openidc's messages). */
  errors(): string;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts Apache on 127.0.0.1:`port` as the `intranet` application of the IdP at `issuer`. */
export async function startApacheRp(port: number, issuer: string): Promise<ApacheRp> {
  // Its own folder, readable by the worker (www-data when started as root), removed by stop().
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-apache-'));
  const origin = `http://localhost:${port}`;
  const swap = (text: string): string => text.replaceAll(DOC_IDP, issuer).replaceAll(DOC_APP, origin);
  mkdirSync(join(dir, 'htdocs', 'protected'), { recursive: true });
  mkdirSync(join(dir, 'run'), { recursive: true });
  for (const d of [dir, join(dir, 'htdocs'), join(dir, 'htdocs', 'protected')]) chmodSync(d, 0o755);
  writeFileSync(
    join(dir, 'htdocs', 'protected', 'index.shtml'),
    '<!doctype html><meta charset="utf-8"><title>Intranet</title><p id="apache">Apache (mod_auth_openidc) : page protégée — <!--#echo var="OIDC_CLAIM_given_name" --> <!--#echo var="OIDC_CLAIM_family_name" --></p><p><a id="logout" href="/protected/redirect_uri?logout=http%3A%2F%2Flocalhost%3A' + port + '%2Floggedout.html">Se déconnecter</a></p>\n',
  );
  writeFileSync(join(dir, 'htdocs', 'loggedout.html'), '<!doctype html><meta charset="utf-8"><title>Intranet</title><p id="apache-home">Apache : déconnecté</p>\n');
  const oidc = swap(docBlock('<!-- idp-apache-example -->'));
  const conf = join(dir, 'apache2.conf');
  writeFileSync(
    conf,
    `ServerRoot ${dir}
ServerName localhost
Listen 127.0.0.1:${port}
PidFile ${join(dir, 'run', 'apache2.pid')}
DefaultRuntimeDir ${join(dir, 'run')}
ErrorLog ${join(dir, 'error.log')}
LogLevel warn auth_openidc:info
${process.getuid?.() === 0 ? 'User www-data\nGroup www-data' : ''}
StartServers 1
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authn_core_module ${MODULES}/mod_authn_core.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule authz_user_module ${MODULES}/mod_authz_user.so
LoadModule mime_module ${MODULES}/mod_mime.so
LoadModule dir_module ${MODULES}/mod_dir.so
LoadModule include_module ${MODULES}/mod_include.so
LoadModule auth_openidc_module ${MODULES}/mod_auth_openidc.so
TypesConfig /etc/mime.types
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
<Directory />
  AllowOverride None
  Require all denied
</Directory>
DocumentRoot ${join(dir, 'htdocs')}
DirectoryIndex index.shtml
<Directory ${join(dir, 'htdocs')}>
  Options +Includes
  Require all granted
</Directory>
# docs/idp.md, section 15 (mod_auth_openidc), the test's host names:
${oidc}
`,
  );
  const check = spawnSync(APACHE, ['-t', '-f', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`apache2 refuses its configuration: ${check.stderr}`);
  const child: ChildProcess = spawn(APACHE, ['-f', conf, '-DFOREGROUND'], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    origin,
    logoutUrl: `${origin}/protected/redirect_uri?logout=${encodeURIComponent(`${origin}/loggedout.html`)}`,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
    errors: () => {
      try {
        return readFileSync(join(dir, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    },
  };
}
