import type { SimCluster } from './cluster.js';
import { SIM_PLATFORM } from './constraints.js';
import type { Json, SimNode, SimService, SimTask } from './model.js';

/*
 * Engine API JSON (v1.41, what the lab's dockerd 20.10 speaks) built from the simulator's
 * records: the field names and nesting dockerode users and the docker CLI read.
 */

export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.12';
const KERNEL = 'berth-sim';

const iso = (ms: number) => new Date(ms).toISOString();

export function nodeJson(n: SimNode, engineVersion: string): Json {
  return {
    ID: n.id,
    Version: { Index: n.version },
    CreatedAt: iso(n.createdAt),
    UpdatedAt: iso(n.updatedAt),
    Spec: { ...(n.specName ? { Name: n.specName } : {}), Labels: n.labels, Role: n.role, Availability: n.availability },
    Description: {
      Hostname: n.hostname,
      Platform: { Architecture: SIM_PLATFORM.arch, OS: SIM_PLATFORM.os },
      Resources: { NanoCPUs: 2_000_000_000, MemoryBytes: 4_294_967_296 },
      Engine: { EngineVersion: engineVersion, Plugins: [{ Type: 'Log', Name: 'json-file' }, { Type: 'Network', Name: 'overlay' }, { Type: 'Volume', Name: 'local' }] },
      TLSInfo: { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' },
    },
    Status: { State: n.state, Addr: n.addr },
    ...(n.role === 'manager'
      ? { ManagerStatus: { Leader: n.leader, Reachability: 'reachable', Addr: `${n.addr}:2377` } }
      : {}),
  };
}

export function serviceJson(s: SimService, status?: Json): Json {
  return {
    ID: s.id,
    Version: { Index: s.version },
    CreatedAt: iso(s.createdAt),
    UpdatedAt: iso(s.updatedAt),
    Spec: s.spec,
    ...(s.previousSpec ? { PreviousSpec: s.previousSpec } : {}),
    Endpoint: { Spec: s.spec.EndpointSpec, ...(s.endpointPorts.length ? { Ports: s.endpointPorts } : {}) },
    ...(s.updateStatus
      ? {
          UpdateStatus: {
            State: s.updateStatus.state,
            StartedAt: iso(s.updateStatus.startedAt),
            ...(s.updateStatus.completedAt !== undefined ? { CompletedAt: iso(s.updateStatus.completedAt) } : {}),
            Message: s.updateStatus.message,
          },
        }
      : {}),
    ...(status ? { ServiceStatus: status } : {}),
  };
}

export function taskJson(t: SimTask): Json {
  return {
    ID: t.id,
    Version: { Index: t.version },
    CreatedAt: iso(t.createdAt),
    UpdatedAt: iso(t.updatedAt),
    Labels: {},
    Spec: t.spec,
    ServiceID: t.serviceId,
    ...(t.slot ? { Slot: t.slot } : {}),
    ...(t.nodeId ? { NodeID: t.nodeId } : {}),
    Status: {
      Timestamp: iso(t.stateAt),
      State: t.state,
      Message: t.message,
      ...(t.err ? { Err: t.err } : {}),
      ...(t.containerId ? { ContainerStatus: { ContainerID: t.containerId, PID: t.state === 'running' ? pidOf(t.containerId) : 0, ExitCode: t.exitCode ?? 0 } } : {}),
      PortStatus: t.containerId && t.hostPorts.length
        ? { Ports: t.hostPorts.map((p) => ({ Protocol: p.protocol, TargetPort: p.target, PublishedPort: p.published, PublishMode: p.mode })) }
        : {},
    },
    DesiredState: t.desiredState,
  };
}

const pidOf = (containerId: string) => 1000 + (parseInt(containerId.slice(0, 4), 16) % 30000);

function clusterJson(c: SimCluster): Json {
  return {
    ID: c.id,
    Version: { Index: c.storeIndex },
    CreatedAt: iso(c.createdAt),
    UpdatedAt: iso(c.createdAt),
    Spec: {
      Name: 'default',
      Labels: {},
      Orchestration: { TaskHistoryRetentionLimit: 5 },
      Raft: { SnapshotInterval: 10000, KeepOldSnapshots: 0, LogEntriesForSlowFollowers: 500, ElectionTick: 10, HeartbeatTick: 1 },
      Dispatcher: { HeartbeatPeriod: 5_000_000_000 },
      CAConfig: { NodeCertExpiry: 7_776_000_000_000_000 },
      TaskDefaults: {},
      EncryptionConfig: { AutoLockManagers: false },
    },
    TLSInfo: { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' },
    RootRotationInProgress: false,
    DefaultAddrPool: ['10.0.0.0/8'],
    SubnetSize: 24,
    DataPathPort: 4789,
  };
}

/** `GET /swarm`. */
export function swarmJson(c: SimCluster): Json {
  return { ...clusterJson(c), JoinTokens: { Worker: 'SWMTKN-1-sim-worker', Manager: 'SWMTKN-1-sim-manager' } };
}

/** `GET /info`: what `docker info` and the CLI's swarm commands read (Swarm.NodeID marks "self"). */
export function infoJson(c: SimCluster, eventListeners: number, now: number): Json {
  const self = c.self;
  const managers = c.nodes.filter((n) => n.role === 'manager');
  let containers = 0;
  for (const t of c.listTasks()) if (t.containerId && t.nodeId === self?.id && t.state === 'running') containers++;
  return {
    ID: c.id.toUpperCase(),
    Containers: containers,
    ContainersRunning: containers,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: 'vfs',
    DriverStatus: [],
    Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'overlay'], Authorization: null, Log: ['json-file'] },
    MemoryLimit: true,
    SwapLimit: false,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: true,
    Debug: false,
    NFd: 20,
    OomKillDisable: true,
    NGoroutines: 40,
    SystemTime: iso(now),
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: '1',
    NEventsListener: eventListeners,
    KernelVersion: KERNEL,
    OperatingSystem: 'berth sim (simulated Swarm)',
    OSVersion: '',
    OSType: 'linux',
    Architecture: SIM_PLATFORM.arch,
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { AllowNondistributableArtifactsCIDRs: [], AllowNondistributableArtifactsHostnames: [], InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
    NCPU: 2,
    MemTotal: 4_294_967_296,
    DockerRootDir: '/var/lib/docker',
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: self?.hostname ?? 'sim',
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: c.engineVersion,
    Runtimes: { runc: { path: 'runc' } },
    DefaultRuntime: 'runc',
    Swarm: {
      NodeID: self?.id ?? '',
      NodeAddr: self?.addr ?? '',
      LocalNodeState: 'active',
      ControlAvailable: self?.role === 'manager',
      Error: '',
      RemoteManagers: managers.map((m) => ({ NodeID: m.id, Addr: `${m.addr}:2377` })),
      Nodes: c.nodes.length,
      Managers: managers.length,
      Cluster: clusterJson(c),
    },
    LiveRestoreEnabled: false,
    Isolation: '',
    InitBinary: 'docker-init',
    ContainerdCommit: { ID: '', Expected: '' },
    RuncCommit: { ID: '', Expected: '' },
    InitCommit: { ID: '', Expected: '' },
    SecurityOptions: [],
    Warnings: null,
  };
}

/** `GET /version`. */
export function versionJson(engineVersion: string): Json {
  const details = {
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: 'berth-sim',
    GoVersion: 'go1.19.8',
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: KERNEL,
    BuildTime: '2023-01-01T00:00:00.000000000+00:00',
  };
  return {
    Platform: { Name: 'berth sim' },
    Components: [{ Name: 'Engine', Version: engineVersion, Details: { ...details, Experimental: 'false' } }],
    Version: engineVersion,
    ...details,
  };
}
