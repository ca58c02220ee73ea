// Every NATS subject, queue group, service name, KV bucket, key and object name, built in one place.
// Names embed user-chosen tokens (model names, hardware classes), so each is checked first.

/** A token that is safe in a subject, a KV key and an object name: no dots, wildcards or spaces. */
const TOKEN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export class InvalidNameError extends Error {
  readonly code = 'INVALID_NAME';
  constructor(kind: string, value: string) {
    super(`${kind} "${value}" is not a valid name: use 1-64 letters, digits, '-' or '_', starting with a letter or digit`);
    this.name = 'InvalidNameError';
  }
}

export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

export function checkToken(kind: string, value: string): string {
  if (!isToken(value)) throw new InvalidNameError(kind, value);
  return value;
}

export const PREFIX = 'infaas';

export const subjects = {
  registry: {
    /** Micro service group; endpoints below sit under it. */
    group: `${PREFIX}.registry`,
    register: `${PREFIX}.registry.register`,
    models: `${PREFIX}.registry.models`,
    info: `${PREFIX}.registry.info`,
    unregister: `${PREFIX}.registry.unregister`,
  },
  profiler: {
    group: `${PREFIX}.profiler`,
    generate: `${PREFIX}.profiler.generate`,
  },
  events: {
    /** Progress and lifecycle events about one model (registration, generation, profiling). */
    model: (model: string) => `${PREFIX}.events.registry.${checkToken('model', model)}`,
    allModels: `${PREFIX}.events.registry.>`,
    /** A worker's lifecycle, instance states, autoscaler decisions and mitigation requests. */
    worker: (workerId: string) => `${PREFIX}.events.worker.${checkToken('worker', workerId)}`,
    allWorkers: `${PREFIX}.events.worker.>`,
    /** Sampled audit records of the dispatchers' selections, and their unplaced-demand reports. */
    dispatcher: `${PREFIX}.events.dispatcher`,
    /** The VM-autoscaler's decisions. */
    cluster: `${PREFIX}.events.cluster`,
  },
  worker: {
    /** Micro service group of one worker; its endpoints sit under it. */
    group: (workerId: string) => `${PREFIX}.worker.${checkToken('worker', workerId)}`,
    infer: (workerId: string) => `${PREFIX}.worker.${checkToken('worker', workerId)}.infer`,
    load: (workerId: string) => `${PREFIX}.worker.${checkToken('worker', workerId)}.load`,
    unload: (workerId: string) => `${PREFIX}.worker.${checkToken('worker', workerId)}.unload`,
    instances: (workerId: string) => `${PREFIX}.worker.${checkToken('worker', workerId)}.instances`,
    drain: (workerId: string) => `${PREFIX}.worker.${checkToken('worker', workerId)}.drain`,
  },
  /** The operator's console (infaas-admin micro service on each controller; docs/operations.md). */
  admin: {
    group: `${PREFIX}.admin`,
    summary: `${PREFIX}.admin.summary`,
    pause: `${PREFIX}.admin.pause`,
    resume: `${PREFIX}.admin.resume`,
    settingsGet: `${PREFIX}.admin.settings.get`,
    settingsSet: `${PREFIX}.admin.settings.set`,
    pin: `${PREFIX}.admin.pin`,
    unpin: `${PREFIX}.admin.unpin`,
    cancel: `${PREFIX}.admin.cancel`,
    /**
     * Served by one registrar (its registry service, queue infaas-registrars): cancels a registration
     * it runs. The console forwards a cancel here when another controller's registrar owns it.
     */
    cancelOwned: (registrarId: string) => `${PREFIX}.admin.registrar.${checkToken('registrar', registrarId)}.cancel`,
    allCancelOwned: `${PREFIX}.admin.registrar.>`,
  },
  /** Model-less query entry point (served by dispatchers; see the controller issue). */
  query: `${PREFIX}.query`,
  /**
   * Where a worker tells the forwarding dispatcher that a query was answered: the reply subject of
   * each forwarded query is `infaas.acks.<controller>.<n>`, so a dead worker's no-responders status
   * (and its silence) reaches the dispatcher, which re-sends the query or answers it with an error.
   */
  acks: (controllerId: string) => `${PREFIX}.acks.${checkToken('controller', controllerId)}`,
  allAcks: `${PREFIX}.acks.>`,
  acksPrefix: `${PREFIX}.acks.`,
  resultsPrefix: `${PREFIX}.results.`,
} as const;

/** Data-plane headers: deadlines travel with each query as absolute epoch milliseconds. */
export const headerNames = {
  /** The answer is worthless after this instant; every hop drops work that cannot finish by then. */
  deadline: 'Infaas-Deadline',
  /** When the query entered the system (the first hop sets it), for end-to-end timings. */
  start: 'Infaas-Start',
  /**
   * Routing facts a dispatcher adds when it forwards a client's query bytes untouched: the chosen
   * variant, "1" to load it if absent, "1" when the client named the variant, and a note for the answer.
   */
  variant: 'Infaas-Variant',
  load: 'Infaas-Load',
  pinned: 'Infaas-Pinned',
  note: 'Infaas-Note',
  /**
   * On a query a dispatcher forwards, the client's reply subject (the forwarded message's own reply
   * subject is the dispatcher's ack subject). The worker answers here, then acks.
   */
  reply: 'Infaas-Reply',
  /** On an ack: the worker did not take the query (draining, say) and answered nobody: re-send it. */
  refused: 'Infaas-Refused',
} as const;

export const services = {
  /** The controller's query entry point (dispatchers, one instance per controller). */
  dispatcher: 'infaas-dispatcher',
  registry: 'infaas-registry',
  profiler: 'infaas-profiler',
  worker: 'infaas-worker',
  admin: 'infaas-admin',
} as const;

export const queueGroups = {
  /** Every controller's dispatcher takes a share of infaas.query. */
  dispatchers: 'infaas-dispatchers',
  registry: 'infaas-registrars',
  profiler: 'infaas-profilers',
  admin: 'infaas-admins',
} as const;

export const buckets = {
  models: 'infaas_models',
  variants: 'infaas_variants',
  profiles: 'infaas_profiles',
  /** Worker records with heartbeats (bucket TTL drops the records of workers that died). */
  workers: 'infaas_workers',
  /** Instance stats, one key per instance: "<worker>.<instance>". */
  instances: 'infaas_instances',
  /** Leases for work only one controller may do at a time (the VM-autoscaler). */
  leases: 'infaas_leases',
  /** Policy settings the actors watch and apply at runtime: autoscaler pauses and knobs, instance pins. */
  settings: 'infaas_settings',
  /** The console's per-model summary over the last minute, one key per model, rewritten every few seconds. */
  summary: 'infaas_summary',
  /** Object Store: model files, variant files, validation sets, user uploads. */
  repository: 'infaas_repo',
  /**
   * Object Store: tensors too big for one message (claim check), named by a random token; the
   * bucket's TTL drops what nobody deleted (a client that died, an answer nobody read).
   */
  blobs: 'infaas_blobs',
} as const;

/** Buckets that are Object Stores (stream OBJ_<bucket>); the rest are KV (stream KV_<bucket>). */
export const objectStoreBuckets: readonly string[] = [buckets.repository, buckets.blobs];

export const keys = {
  model: (model: string) => checkToken('model', model),
  /** A variant id is "<model>.<suffix>": the same string is its KV key. */
  variant: (model: string, suffix: string) => `${checkToken('model', model)}.${checkToken('variant suffix', suffix)}`,
  variantsOf: (model: string) => `${checkToken('model', model)}.>`,
  profile: (variantId: string, hardwareClass: string) => `${checkVariantId(variantId)}.${checkToken('hardware class', hardwareClass)}`,
  profilesOf: (model: string) => `${checkToken('model', model)}.>`,
  worker: (workerId: string) => checkToken('worker', workerId),
  instance: (workerId: string, instanceId: string) => `${checkToken('worker', workerId)}.${checkToken('instance', instanceId)}`,
  instancesOf: (workerId: string) => `${checkToken('worker', workerId)}.>`,
  /** In infaas_settings: one record per autoscaler ("vm-autoscaler", "model-autoscaler"). */
  autoscalerSettings: (autoscaler: 'vm-autoscaler' | 'model-autoscaler') => autoscaler,
  /** In infaas_settings: an instance pinned against idle unload. */
  pin: (workerId: string, instanceId: string) => `pin.${checkToken('worker', workerId)}.${checkToken('instance', instanceId)}`,
  pinsPrefix: 'pin.',
} as const;

export const objects = {
  model: (model: string) => `models/${checkToken('model', model)}/model.onnx`,
  validationSet: (model: string) => `models/${checkToken('model', model)}/validation.msgpack`,
  variant: (model: string, file: string) => `variants/${checkToken('model', model)}/${checkToken('variant file', file)}.onnx`,
  ownedBy: (model: string) => [`models/${checkToken('model', model)}/`, `variants/${model}/`],
  upload: (id: string) => `uploads/${checkToken('upload id', id)}`,
  /** A tensor in the blobs bucket: a bare token, so a reference names nothing else. */
  blob: (id: string) => checkToken('blob id', id),
} as const;

export function checkVariantId(id: string): string {
  const parts = id.split('.');
  if (parts.length !== 2 || !parts.every(isToken)) {
    throw new InvalidNameError('variant', id);
  }
  return id;
}

export function splitVariantId(id: string): { model: string; suffix: string } {
  const [model, suffix] = checkVariantId(id).split('.');
  return { model, suffix };
}
