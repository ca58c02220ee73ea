// Who may publish and subscribe to what: the NATS permissions of each role, built from the same
// names as everything else. runtime/bus/auth.ts turns them into nats-server users; docs/security.md
// explains them. Derived from what each actor does on the bus (a traced run of a full stack).
import { PREFIX, buckets, checkToken, objectStoreBuckets, queueGroups, services, subjects } from './index.js';

export const ROLES = ['client', 'worker', 'controller', 'operator', 'stack'] as const;
export type Role = (typeof ROLES)[number];

export const roleDescriptions: Record<Role, string> = {
  client: 'sends queries and receives its own answers, nothing else',
  worker: 'serves its endpoints, answers clients, writes its records, profiles and variant files',
  controller: 'dispatcher, registrar and VM-autoscaler: serves infaas.query and infaas.registry, forwards to workers',
  operator: 'reads everything, calls every endpoint, manages KV and the repository; serves nothing',
  stack: 'controller and worker in one process, plus the zoo registration and the demonstration (infaas up)',
};

export interface PermissionList { allow: string[]; deny?: string[] }
export interface Permissions { publish: PermissionList; subscribe: PermissionList }

/** Every reply inbox a user gets lives under `_INBOX.<user>` (nats.js option `inboxPrefix`). */
export function inboxPrefixOf(user: string): string {
  return `_INBOX.${checkToken('user', user)}`;
}

/** A client's result subjects: `infaas.results.<user>.<anything>`; no other client can read them. */
export function resultsPrefixOf(user: string): string {
  return `${subjects.resultsPrefix}${checkToken('user', user)}.`;
}

/**
 * Whether a reply subject a client chose may receive an answer. Services answer with their own
 * (wider) permissions, and nats-server does not check a publisher's reply subject, so a query whose
 * reply named a KV key (`$KV.infaas_workers.x`) or a control endpoint (`infaas.worker.w.drain`) would
 * make a worker or dispatcher write there. System subjects and our own, except result subjects, are refused.
 */
export function isAnswerSubject(subject: string): boolean {
  if (subject.length === 0 || subject.startsWith('$')) return false;
  return !subject.startsWith(`${PREFIX}.`) || subject.startsWith(subjects.resultsPrefix);
}

/** JetStream streams behind the buckets: KV_<bucket>, and OBJ_<bucket> for the Object Store. */
const STREAMS = Object.values(buckets).map((b) => (objectStoreBuckets.includes(b) ? `OBJ_${b}` : `KV_${b}`));

/** JetStream API a reader of KV buckets and the Object Store uses (gets, watches, lists, flow control). */
function jsRead(): string[] {
  return ['$JS.API.INFO', '$JS.API.STREAM.NAMES', ...STREAMS.flatMap((s) => [
    `$JS.API.STREAM.INFO.${s}`, `$JS.API.STREAM.MSG.GET.${s}`, `$JS.API.DIRECT.GET.${s}`, `$JS.API.DIRECT.GET.${s}.>`,
    `$JS.API.CONSUMER.CREATE.${s}`, `$JS.API.CONSUMER.CREATE.${s}.>`, `$JS.API.CONSUMER.INFO.${s}.>`, `$JS.API.CONSUMER.DELETE.${s}.>`,
    `$JS.FC.${s}.>`,
  ])];
}

/** Opening the stores creates missing buckets (whichever process starts first); never updates or deletes them. */
function jsCreate(): string[] {
  return STREAMS.map((s) => `$JS.API.STREAM.CREATE.${s}`);
}

function kvWrite(...bs: string[]): string[] {
  return bs.map((b) => `$KV.${b}.>`);
}

/** Putting an object over an old one purges the old chunks; deleting one purges them too. */
function repoWrite(): string[] {
  return [`$O.${buckets.repository}.>`, `$JS.API.STREAM.PURGE.OBJ_${buckets.repository}`];
}

/**
 * Claim check (docs/query.md, "Big tensors"): put, read and delete tensors in the blobs bucket and
 * nothing else of JetStream. A client opens the bucket without the $JS.API.INFO check (QueryClient
 * does), so it never learns of, or reaches, any other stream.
 */
function blobAccess(): string[] {
  const s = `OBJ_${buckets.blobs}`;
  return [`$O.${buckets.blobs}.>`, `$JS.API.STREAM.PURGE.${s}`, `$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.INFO.${s}`,
    `$JS.API.STREAM.MSG.GET.${s}`, `$JS.API.DIRECT.GET.${s}`, `$JS.API.DIRECT.GET.${s}.>`,
    `$JS.API.CONSUMER.CREATE.${s}`, `$JS.API.CONSUMER.CREATE.${s}.>`, `$JS.API.CONSUMER.INFO.${s}.>`, `$JS.API.CONSUMER.DELETE.${s}.>`, `$JS.FC.${s}.>`];
}

/** A micro service's own discovery subjects ($SRV.PING, $SRV.INFO.<name>, $SRV.STATS.<name>.<id>). */
function serviceDiscovery(...names: string[]): string[] {
  return ['$SRV.*', ...names.flatMap((n) => [`$SRV.*.${n}`, `$SRV.*.${n}.*`])];
}

const EVERYONES_INBOX = '_INBOX.>';
const ALL_RESULTS = `${subjects.resultsPrefix}>`;
const ALL_WORKERS = `${PREFIX}.worker.>`;
const ALL_EVENTS = `${PREFIX}.events.>`;
const REGISTRY = `${subjects.registry.group}.>`;
const PROFILER = `${subjects.profiler.group}.>`;
/** The operator's console: served by controllers, called by operators only. */
const ADMIN = `${subjects.admin.group}.>`;
/** A console forwards a cancel to the registrar running the registration (its registry service serves it). */
const CANCEL_OWNED = subjects.admin.allCancelOwned;
/** nats.js micro endpoints without a queue option (the worker's) use this queue group. */
const MICRO_DEFAULT_QUEUE = 'q';

function worker(user: string): Permissions {
  return {
    publish: {
      // A profiler pings the profilers to tell a claim abandoned by a dead one (actors/profiler/effects.ts).
      allow: [EVERYONES_INBOX, ALL_RESULTS, subjects.allAcks, subjects.events.allWorkers, subjects.events.allModels, `$SRV.PING.${services.profiler}`,
        ...jsRead(), ...jsCreate(), ...kvWrite(buckets.workers, buckets.instances, buckets.profiles), ...repoWrite(), ...blobAccess()],
    },
    subscribe: {
      allow: [`${ALL_WORKERS} ${MICRO_DEFAULT_QUEUE}`, `${PROFILER} ${queueGroups.profiler}`, ...serviceDiscovery(services.worker, services.profiler), `${inboxPrefixOf(user)}.>`],
    },
  };
}

function controller(user: string): Permissions {
  return {
    publish: {
      allow: [EVERYONES_INBOX, ALL_RESULTS, ALL_WORKERS, PROFILER, ALL_EVENTS, CANCEL_OWNED, '$SRV.>',
        ...jsRead(), ...jsCreate(), ...kvWrite(buckets.models, buckets.variants, buckets.profiles, buckets.leases, buckets.settings, buckets.summary), ...repoWrite()],
    },
    subscribe: {
      allow: [`${subjects.query} ${queueGroups.dispatchers}`, `${REGISTRY} ${queueGroups.registry}`, `${ADMIN} ${queueGroups.admin}`, `${CANCEL_OWNED} ${queueGroups.registry}`, subjects.allAcks, ALL_EVENTS,
        ...serviceDiscovery(services.dispatcher, services.registry, services.admin), `${inboxPrefixOf(user)}.>`],
    },
  };
}

function client(user: string): Permissions {
  return {
    publish: { allow: [subjects.query, ...blobAccess()] },
    subscribe: { allow: [`${inboxPrefixOf(user)}.>`, `${resultsPrefixOf(user)}>`] },
  };
}

function operator(): Permissions {
  return {
    publish: { allow: [subjects.query, REGISTRY, PROFILER, ALL_WORKERS, ADMIN, '$SRV.>', '$JS.API.>', '$JS.FC.>', '$JS.ACK.>', '$KV.>', '$O.>'] },
    // Reads everything with plain subscriptions; `> *` denies every queue subscription, so an
    // operator credential cannot take a share of any service's traffic.
    subscribe: { allow: ['>'], deny: ['> *'] },
  };
}

function union(...ps: Permissions[]): Permissions {
  const merge = (k: 'publish' | 'subscribe') => [...new Set(ps.flatMap((p) => p[k].allow))];
  return { publish: { allow: merge('publish') }, subscribe: { allow: merge('subscribe') } };
}

/** The permissions of one user of a role (the user name fixes its inbox and result subjects). */
export function rolePermissions(role: Role, user: string): Permissions {
  switch (role) {
    case 'client': return client(user);
    case 'worker': return worker(user);
    case 'controller': return controller(user);
    case 'operator': return operator();
    case 'stack': return union(controller(user), worker(user), { publish: { allow: [subjects.query, REGISTRY] }, subscribe: { allow: [] } });
  }
}
