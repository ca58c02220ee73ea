// A deployment described once: hosts with their addresses and roles (NATS node, controller,
// worker with hardware class and price). Parsed and checked here; cluster/deploy.ts carries it out.
import { NATS_DEFAULT_PORTS, type NatsNodeSpec } from './nats-cluster.js';

export interface NatsRole { role: 'nats'; port?: number; clusterPort?: number; monitorPort?: number }
export interface ControllerRole { role: 'controller'; args?: string[] }
export interface WorkerRole { role: 'worker'; hardwareClass: string; price?: number; threads?: number; id?: string; args?: string[] }
export type RoleSpec = NatsRole | ControllerRole | WorkerRole;

export interface HostSpec {
  /** A short name (letters, digits, - and _): process and server names derive from it. */
  name: string;
  /** Where the other hosts and the launcher reach this host's NATS node. */
  address: string;
  /** ssh destination (default: address); `user@host` or a Host of ~/.ssh/config. */
  ssh?: string;
  /** Network namespace to run in (the local transport only: test hosts on one machine). */
  netns?: string;
  /** Base directory on the host (default: the deployment's). */
  dir?: string;
  /** How to run infaas there (default: the deployment's). */
  infaas?: string;
  natsServer?: string;
  roles: RoleSpec[];
}

export interface DeploymentSpec {
  /** Names the NATS cluster and the directories; letters, digits, - and _. */
  name: string;
  /** Base directory on every host, absolute or relative to the login directory (default `.infaas-deploy/<name>`). */
  dir?: string;
  /** Command that runs infaas on the hosts (default `infaas`). */
  infaas?: string;
  /** nats-server on the hosts (default `nats-server`). */
  natsServer?: string;
  /** Access control on the cluster (default true): generated credentials, shipped to each process. */
  auth?: boolean;
  maxPayload?: number;
  /** Extra environment for controllers and workers (INFAAS_LOG_LEVEL, ...). */
  env?: Record<string, string>;
  hosts: HostSpec[];
}

/** One process of a deployment, with the names and places the launch scripts use. */
export interface DeployProcess {
  kind: RoleSpec['role'];
  /** Unique in the deployment: nats-<host>, controller-<host>, or the worker id. */
  name: string;
  host: HostSpec;
  role: RoleSpec;
  /** Its directory on the host: pid file, log, config, store. */
  dir: string;
}

export class DeploymentSpecError extends Error {
  readonly code = 'DEPLOYMENT_SPEC';
  constructor(message: string) {
    super(message);
    this.name = 'DeploymentSpecError';
  }
}

const NAME = /^[A-Za-z0-9_-]+$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new DeploymentSpecError(message);
}

const optionalPort = (v: unknown, where: string) => check(v === undefined || (Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536), `${where} must be a port number`);
const optionalString = (v: unknown, where: string) => check(v === undefined || (typeof v === 'string' && v.length > 0), `${where} must be a non-empty string`);
const optionalArgs = (v: unknown, where: string) => check(v === undefined || (Array.isArray(v) && v.every((a) => typeof a === 'string')), `${where} must be an array of strings`);

function checkRole(r: unknown, where: string): RoleSpec {
  check(isObject(r), `${where} must be an object`);
  if (r.role === 'nats') {
    for (const k of ['port', 'clusterPort', 'monitorPort']) optionalPort(r[k], `${where}.${k}`);
  } else if (r.role === 'controller') {
    optionalArgs(r.args, `${where}.args`);
  } else if (r.role === 'worker') {
    check(typeof r.hardwareClass === 'string' && NAME.test(r.hardwareClass), `${where}.hardwareClass is required (e.g. cpu-2t)`);
    check(r.price === undefined || (typeof r.price === 'number' && r.price >= 0), `${where}.price must be dollars per hour >= 0`);
    check(r.threads === undefined || (Number.isInteger(r.threads) && (r.threads as number) > 0), `${where}.threads must be a positive whole number`);
    check(r.id === undefined || (typeof r.id === 'string' && NAME.test(r.id)), `${where}.id must be letters, digits, - or _`);
    optionalArgs(r.args, `${where}.args`);
  } else {
    throw new DeploymentSpecError(`${where}.role must be nats, controller or worker`);
  }
  return r as unknown as RoleSpec;
}

/** Checks a parsed hosts file; throws DeploymentSpecError naming the first problem. Returns it frozen. */
export function parseDeployment(doc: unknown): DeploymentSpec {
  check(isObject(doc), 'a deployment is a JSON object with "name" and "hosts"');
  check(typeof doc.name === 'string' && NAME.test(doc.name), '"name" must be letters, digits, - or _');
  for (const k of ['dir', 'infaas', 'natsServer']) optionalString(doc[k], `"${k}"`);
  check(doc.auth === undefined || typeof doc.auth === 'boolean', '"auth" must be true or false');
  check(doc.maxPayload === undefined || Number.isInteger(doc.maxPayload), '"maxPayload" must be bytes');
  check(doc.env === undefined || (isObject(doc.env) && Object.values(doc.env).every((v) => typeof v === 'string')), '"env" must map names to strings');
  check(Array.isArray(doc.hosts) && doc.hosts.length > 0, '"hosts" must be a non-empty array');
  const names = new Set<string>();
  doc.hosts.forEach((h: unknown, i: number) => {
    const where = `hosts[${i}]`;
    check(isObject(h), `${where} must be an object`);
    check(typeof h.name === 'string' && NAME.test(h.name), `${where}.name must be letters, digits, - or _`);
    check(!names.has(h.name), `host name "${h.name}" is used twice`);
    names.add(h.name);
    check(typeof h.address === 'string' && h.address.length > 0, `${where}.address is required`);
    for (const k of ['ssh', 'netns', 'dir', 'infaas', 'natsServer']) optionalString(h[k], `${where}.${k}`);
    check(Array.isArray(h.roles), `${where}.roles must be an array`);
    h.roles.forEach((r: unknown, j: number) => checkRole(r, `${where}.roles[${j}]`));
    check(h.roles.filter((r: RoleSpec) => r.role === 'nats').length <= 1, `${where} has more than one nats role`);
  });
  const spec = doc as unknown as DeploymentSpec;
  const processes = deploymentProcesses(spec);
  check(processes.some((p) => p.kind === 'nats'), 'a deployment needs at least one nats role');
  const seen = new Set<string>();
  for (const p of processes) {
    check(!seen.has(p.name), `process name "${p.name}" is used twice (give workers distinct ids)`);
    seen.add(p.name);
  }
  return Object.freeze(spec);
}

/** The base directory on a host. */
export function hostDir(spec: DeploymentSpec, host: HostSpec): string {
  return host.dir ?? spec.dir ?? `.infaas-deploy/${spec.name}`;
}

/** Every process of the deployment, in host order. Worker ids default to worker-<host>-<n>. */
export function deploymentProcesses(spec: DeploymentSpec): DeployProcess[] {
  const out: DeployProcess[] = [];
  for (const host of spec.hosts) {
    let workers = 0;
    let controllers = 0;
    for (const role of host.roles) {
      const name = role.role === 'nats' ? `nats-${host.name}`
        : role.role === 'controller' ? `controller-${host.name}${controllers++ > 0 ? `-${controllers}` : ''}`
          : role.id ?? `worker-${host.name}-${++workers}`;
      out.push({ kind: role.role, name, host, role, dir: `${hostDir(spec, host)}/${name}` });
    }
  }
  return out;
}

/** The NATS nodes of the deployment as the config generator takes them. */
export function natsNodes(spec: DeploymentSpec): NatsNodeSpec[] {
  return deploymentProcesses(spec).filter((p) => p.kind === 'nats').map((p) => {
    const r = p.role as NatsRole;
    return {
      name: p.name, address: p.host.address, storeDir: `${p.dir}/jetstream`,
      port: r.port ?? NATS_DEFAULT_PORTS.client, clusterPort: r.clusterPort ?? NATS_DEFAULT_PORTS.cluster, monitorPort: r.monitorPort ?? NATS_DEFAULT_PORTS.monitor,
    };
  });
}
