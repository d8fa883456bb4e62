/**
 * nginx (Debian's package) as the site a national portal would be: https on 127.0.0.1, a client
 * certificate from the test IGC-Santé CA required, the page showing the holder from the certificate (in
 * its title too, for window titles read by xdotool) and the certificate's serial.
 * Two ports: TLS 1.2 only (what a site that serves CPS3 cards must offer) and TLS 1.3 only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { igcSanteBundle, serverCertificate } from './nss.js';
import { freePort } from './pkcs11-daemon.js';

export interface Site {
  tls12: number;
  tls13: number;
  /** The server's own certificate (PEM). */
  cert: string;
  /** The CA that issued it (PEM), for clients that check it. */
  ca: string;
  stop(): Promise<void>;
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

export async function startSite(dir: string): Promise<Site> {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const { key, cert, ca } = serverCertificate(dir);
  const cas = igcSanteBundle(dir);
  const [tls12, tls13] = [await freePort(), await freePort()];
  const server = (port: number, protocols: string): string => `
    server {
      listen 127.0.0.1:${port} ssl;
      server_name localhost;
      ssl_certificate ${cert};
      ssl_certificate_key ${key};
      ssl_protocols ${protocols};
      ssl_client_certificate ${cas};
      ssl_verify_client on;
      ssl_verify_depth 2;
      default_type text/html;
      location / {
        return 200 "<!doctype html><meta charset=utf-8><title>Connect&eacute; : $ssl_client_s_dn $ssl_client_serial</title><h1>Connect&eacute; : $ssl_client_s_dn</h1><p id=v>$ssl_protocol $ssl_client_verify $ssl_client_serial</p>\\n";
      }
    }`;
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} info;
events { worker_connections 64; }
http {
  access_log ${join(dir, 'logs', 'access.log')};
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  ${server(tls12, 'TLSv1.2')}
  ${server(tls13, 'TLSv1.3')}
}
`,
  );
  const check = spawnSync('nginx', ['-t', '-c', conf, '-p', dir], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx refuses its configuration: ${check.stderr}`);
  const child: ChildProcess = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !((await listening(tls12)) && (await listening(tls13))); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    tls12,
    tls13,
    cert,
    ca,
    errors: () => readFileSync(join(dir, 'logs', 'error.log'), 'utf8'),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGQUIT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
