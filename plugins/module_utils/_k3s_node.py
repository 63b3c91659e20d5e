# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the k3s_node module: input validation, label/taint merging, drain planning.

Internal to homelab.pi_cluster: names here may change without notice.

Layers: ``validate_params`` (pure, runs before any request) -> ``NodeManager``
(reads the Node, patches labels/annotations/taints/unschedulable in one merge patch
under its resourceVersion, drains through the Eviction API, waits for Ready).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ansible_collections.homelab.pi_cluster.plugins.module_utils._k8s_resource import (
    K8sError,
    K8sNotFoundError,
    K8sTimeoutError,
    K8sTooManyRequestsError,
    ResourceService,
)

STATES = ("present", "cordoned", "uncordoned", "drained", "absent")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

# Labels the kubelet, K3s and the cloud/controller layer own: never purged (list one
# with a null value to remove it on purpose).
PROTECTED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "k3s.io", "cattle.io")
# Taints the node lifecycle controller owns (not-ready, unreachable, unschedulable, ...).
CONTROLLER_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
ANNOTATIONS_MAX_BYTES = 256 * 1024


class NodeInputError(Exception):
    """Bad module input; raised before any API request. ``str()`` names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class DrainError(K8sError):
    """Drain could not finish; ``blocked`` lists ``{"pod": "ns/name", "reason": ...}``."""

    def __init__(self, message: str, blocked: List[Dict[str, str]], evicted: List[str]) -> None:
        super().__init__(message)
        self.blocked = blocked
        self.evicted = evicted


# --------------------------------------------------------------------------- validation (pure)


def dns_subdomain_error(value: str) -> Optional[str]:
    if len(value) > 253:
        return f"must be at most 253 characters (has {len(value)})"
    if not DNS1123_SUBDOMAIN.match(value):
        return "must be a lowercase RFC 1123 subdomain: [a-z0-9] and '-', '.' inside, alphanumeric at both ends"
    return None


def qualified_name_error(key: str) -> Optional[str]:
    """Why ``key`` is not a valid label/annotation/taint key (``prefix/name``), or None."""
    parts = key.split("/")
    if len(parts) > 2:
        return "must be 'name' or 'prefix/name' with a single '/'"
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        problem = dns_subdomain_error(prefix) if prefix else "must not be empty"
        if problem:
            return f"prefix {prefix!r} {problem}"
    if not name:
        return "name part must not be empty"
    if len(name) > 63:
        return f"name part must be at most 63 characters (has {len(name)})"
    if not QUALIFIED_NAME_PART.match(name):
        return "name part must consist of [A-Za-z0-9], '-', '_' or '.', alphanumeric at both ends"
    return None


def label_value_error(value: str) -> Optional[str]:
    if len(value) > 63:
        return f"must be at most 63 characters (has {len(value)})"
    if value and not QUALIFIED_NAME_PART.match(value):
        return "must be empty or [A-Za-z0-9], '-', '_' or '.', alphanumeric at both ends"
    return None


def _as_string(value: Any, where: str) -> Optional[str]:
    """Label/annotation values are strings; numbers are stringified, booleans refused
    (YAML ``true`` would become ``True``: quote it as ``"true"``). None means remove."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise NodeInputError(where, f"must be a string; quote the boolean: '{str(value).lower()}'")
    if isinstance(value, (int, float)):
        return str(value)
    raise NodeInputError(where, f"must be a string, got {type(value).__name__}")


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: Optional[str] = None

    def to_api(self) -> Dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out

    @property
    def identity(self) -> Tuple[str, str]:
        return (self.key, self.effect)


@dataclass
class DrainOptions:
    grace_period: Optional[int] = None
    timeout: int = 300
    delete_emptydir_data: bool = False
    ignore_daemonsets: bool = True
    force: bool = False
    disable_eviction: bool = False


@dataclass
class NodeSpec:
    """Validated, normalised module input."""

    name: str
    state: str
    labels: Dict[str, Optional[str]] = field(default_factory=dict)
    annotations: Dict[str, Optional[str]] = field(default_factory=dict)
    taints: List[Taint] = field(default_factory=list)
    absent_taints: List[Tuple[str, Optional[str]]] = field(default_factory=list)  # (key, effect or None=any)
    purge_labels: bool = False
    purge_taints: bool = False
    manages_taints: bool = False
    drain: DrainOptions = field(default_factory=DrainOptions)
    wait: bool = False
    wait_timeout: int = 120


def _validate_taints(raw: List[Dict[str, Any]]) -> Tuple[List[Taint], List[Tuple[str, Optional[str]]]]:
    present: List[Taint] = []
    absent: List[Tuple[str, Optional[str]]] = []
    seen: Dict[Tuple[str, str], int] = {}
    for index, item in enumerate(raw):
        where = f"taints[{index}]"
        key = item.get("key") or ""
        problem = qualified_name_error(key)
        if problem:
            raise NodeInputError(f"{where}.key", f"{key!r} {problem}")
        if key.startswith(CONTROLLER_TAINT_PREFIXES):
            raise NodeInputError(
                f"{where}.key",
                f"{key!r} is owned by the node lifecycle controller; use state: cordoned/uncordoned instead",
            )
        effect = item.get("effect")
        if effect is not None and effect not in TAINT_EFFECTS:
            raise NodeInputError(f"{where}.effect", f"{effect!r} is not one of {', '.join(TAINT_EFFECTS)}")
        value = _as_string(item.get("value"), f"{where}.value")
        if item.get("state", "present") == "absent":
            absent.append((key, effect))
            continue
        if effect is None:
            raise NodeInputError(f"{where}.effect", f"is required for a present taint ({', '.join(TAINT_EFFECTS)})")
        if value:
            problem = label_value_error(value)
            if problem:
                raise NodeInputError(f"{where}.value", f"{value!r} {problem}")
        if (key, effect) in seen:
            raise NodeInputError(where, f"duplicates taints[{seen[(key, effect)]}]: key {key!r} with effect {effect}")
        seen[(key, effect)] = index
        present.append(Taint(key, effect, value or None))
    return present, absent


def _validate_map(raw: Dict[str, Any], option: str, check_value: bool) -> Dict[str, Optional[str]]:
    out: Dict[str, Optional[str]] = {}
    for key, value in raw.items():
        problem = qualified_name_error(str(key))
        if problem:
            raise NodeInputError(f"{option}[{key!r}]", f"key {problem}")
        text = _as_string(value, f"{option}[{key!r}]")
        if check_value and text is not None:
            problem = label_value_error(text)
            if problem:
                raise NodeInputError(f"{option}[{key!r}]", f"value {text!r} {problem}")
        out[str(key)] = text
    return out


def validate_params(params: Dict[str, Any]) -> NodeSpec:
    """Everything the API would reject (and some it would accept wrongly), before any request."""
    name = params["name"]
    problem = dns_subdomain_error(name or "")
    if not name or problem:
        raise NodeInputError("name", f"{name!r} {problem or 'must not be empty'}")
    state = params.get("state") or "present"
    if state not in STATES:
        raise NodeInputError("state", f"{state!r} is not one of {', '.join(STATES)}")
    labels = _validate_map(params.get("labels") or {}, "labels", check_value=True)
    annotations = _validate_map(params.get("annotations") or {}, "annotations", check_value=False)
    size = sum(len(k) + len(v or "") for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        raise NodeInputError("annotations", f"total size must be at most 256 KiB (has {size} bytes)")
    taints, absent_taints = _validate_taints(params.get("taints") or [])
    if state == "absent":
        for option in ("labels", "annotations", "taints"):
            if params.get(option):
                raise NodeInputError(option, "cannot be combined with state: absent (the Node object is deleted)")
    for option in ("timeout", "wait_timeout"):
        value = params.get(option)
        if value is not None and value <= 0:
            raise NodeInputError(option, f"must be a positive number of seconds, got {value}")
    grace = params.get("grace_period")
    if grace is not None and grace < 0:
        raise NodeInputError("grace_period", f"must be 0 or more seconds (omit it for each pod's own), got {grace}")
    drain = DrainOptions(
        grace_period=grace,
        timeout=params.get("timeout") or 300,
        delete_emptydir_data=bool(params.get("delete_emptydir_data")),
        ignore_daemonsets=params.get("ignore_daemonsets", True) is not False,
        force=bool(params.get("force")),
        disable_eviction=bool(params.get("disable_eviction")),
    )
    return NodeSpec(
        name=name,
        state=state,
        labels=labels,
        annotations=annotations,
        taints=taints,
        absent_taints=absent_taints,
        purge_labels=bool(params.get("purge_labels")),
        purge_taints=bool(params.get("purge_taints")),
        manages_taints=params.get("taints") is not None or bool(params.get("purge_taints")),
        drain=drain,
        wait=bool(params.get("wait")),
        wait_timeout=params.get("wait_timeout") or 120,
    )


# --------------------------------------------------------------------------- merging (pure)


def is_protected_label(key: str) -> bool:
    if "/" not in key:
        return False
    prefix = key.split("/", 1)[0]
    return any(prefix == d or prefix.endswith("." + d) for d in PROTECTED_LABEL_DOMAINS)


def wanted_labels(current: Dict[str, str], spec: NodeSpec) -> Dict[str, Optional[str]]:
    """Merge-patch content for metadata.labels: listed keys, plus removals when purging."""
    wanted: Dict[str, Optional[str]] = dict(spec.labels)
    if spec.purge_labels:
        for key in current:
            if key not in wanted and not is_protected_label(key):
                wanted[key] = None
    return wanted


def merge_taints(current: List[Dict[str, Any]], spec: NodeSpec) -> List[Dict[str, Any]]:
    """The Node's new taint list. Identity is (key, effect) as in Kubernetes; existing
    entries keep their order and extra fields (``timeAdded``); new ones are appended."""
    wanted = {t.identity: t for t in spec.taints}
    result: List[Dict[str, Any]] = []
    for existing in current:
        ident = (existing.get("key", ""), existing.get("effect", ""))
        if ident in wanted:
            taint = wanted.pop(ident)
            kept = dict(existing)
            kept.pop("value", None)
            kept.update(taint.to_api())
            result.append(kept)
            continue
        removed = any(key == ident[0] and effect in (None, ident[1]) for key, effect in spec.absent_taints)
        controller_owned = ident[0].startswith(CONTROLLER_TAINT_PREFIXES)
        if removed or (spec.purge_taints and not controller_owned):
            continue
        result.append(existing)
    result.extend(t.to_api() for t in spec.taints if t.identity in wanted)
    return result


def desired_node_fields(current: Dict[str, Any], spec: NodeSpec) -> Dict[str, Any]:
    """The managed part of the Node (for ResourceService.modify), computed from ``current``."""
    metadata = current.get("metadata") or {}
    node_spec = current.get("spec") or {}
    wanted: Dict[str, Any] = {"metadata": {}, "spec": {}}
    labels = wanted_labels(metadata.get("labels") or {}, spec)
    if labels:
        wanted["metadata"]["labels"] = labels
    if spec.annotations:
        wanted["metadata"]["annotations"] = dict(spec.annotations)
    if spec.manages_taints:
        current_taints = node_spec.get("taints") or []
        taints = merge_taints(current_taints, spec)
        if taints != current_taints:
            # merge patch replaces lists whole; None removes the field when empty
            wanted["spec"]["taints"] = taints or None
    if spec.state in ("cordoned", "drained"):
        wanted["spec"]["unschedulable"] = True
    elif spec.state == "uncordoned" and node_spec.get("unschedulable"):
        wanted["spec"]["unschedulable"] = None  # absent == schedulable, as kubectl uncordon leaves it
    return {k: v for k, v in wanted.items() if v}


def is_ready(node: Optional[Dict[str, Any]]) -> bool:
    for condition in ((node or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def describe_readiness(node: Optional[Dict[str, Any]]) -> str:
    if node is None:
        return "the Node does not exist"
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            detail = condition.get("reason") or ""
            message = condition.get("message") or ""
            return f"Ready is {condition.get('status')} {detail} {message}".strip()
    return "the Node reports no Ready condition (no kubelet has posted status)"


def node_view(node: Optional[Dict[str, Any]], with_annotations: bool) -> Dict[str, Any]:
    """The compact, user-facing state used for returns and --diff."""
    if not node:
        return {}
    metadata = node.get("metadata") or {}
    view: Dict[str, Any] = {
        "labels": dict(sorted((metadata.get("labels") or {}).items())),
        "taints": list((node.get("spec") or {}).get("taints") or []),
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
    }
    if with_annotations:
        view["annotations"] = dict(sorted((metadata.get("annotations") or {}).items()))
    return view


# --------------------------------------------------------------------------- drain planning (pure)


def pod_ref(pod: Dict[str, Any]) -> str:
    metadata = pod.get("metadata") or {}
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def _controller(pod: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return owner
    return None


@dataclass
class DrainPlan:
    evict: List[Dict[str, Any]] = field(default_factory=list)
    terminating: List[Dict[str, Any]] = field(default_factory=list)  # already being deleted: only waited for
    skipped: List[Dict[str, str]] = field(default_factory=list)  # {"pod", "reason"}
    blocked: List[Dict[str, str]] = field(default_factory=list)  # {"pod", "reason"}: drain refuses to start


def plan_drain(
    pods: List[Dict[str, Any]], options: DrainOptions, missing_daemonsets: Optional[Set[str]] = None
) -> DrainPlan:
    """Sort the node's pods like ``kubectl drain``: skip mirror and (optionally) DaemonSet
    pods; refuse unmanaged pods without ``force`` and emptyDir pods without
    ``delete_emptydir_data`` (finished pods are always fine); evict the rest.
    A pod whose DaemonSet is gone (``missing_daemonsets``: ``ns/name``) counts as unmanaged."""
    plan = DrainPlan()
    missing = missing_daemonsets or set()
    for pod in pods:
        ref = pod_ref(pod)
        metadata = pod.get("metadata") or {}
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        controller = _controller(pod)
        if MIRROR_ANNOTATION in (metadata.get("annotations") or {}):
            plan.skipped.append({"pod": ref, "reason": "mirror pod (static pod managed by the kubelet)"})
            continue
        if controller and controller.get("kind") == "DaemonSet":
            if f"{metadata.get('namespace')}/{controller.get('name')}" in missing:
                controller = None  # orphaned: nothing will recreate it, so only force may remove it
            elif options.ignore_daemonsets:
                plan.skipped.append({"pod": ref, "reason": f"DaemonSet-managed ({controller.get('name')})"})
                continue
            else:
                plan.blocked.append({"pod": ref, "reason": "DaemonSet-managed; set ignore_daemonsets: true to skip it"})
                continue
        if metadata.get("deletionTimestamp"):
            plan.terminating.append(pod)
            continue
        reasons = []
        if not finished and controller is None and not options.force:
            reasons.append("not managed by a controller (ReplicaSet, StatefulSet, Job, ...); set force: true")
        uses_empty_dir = any("emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or [])
        if not finished and uses_empty_dir and not options.delete_emptydir_data:
            reasons.append("uses emptyDir volumes whose data would be lost; set delete_emptydir_data: true")
        if reasons:
            plan.blocked.append({"pod": ref, "reason": "; ".join(reasons)})
        else:
            plan.evict.append(pod)
    return plan


def selector_matches(selector: Optional[Dict[str, Any]], labels: Dict[str, str]) -> bool:
    """A metav1.LabelSelector against pod labels (an empty selector matches everything,
    a missing one nothing, as for policy/v1 PodDisruptionBudgets)."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    return all(_expression_matches(expr, labels) for expr in selector.get("matchExpressions") or [])


def _expression_matches(expr: Dict[str, Any], labels: Dict[str, str]) -> bool:
    key, operator, values = str(expr.get("key")), expr.get("operator"), expr.get("values") or []
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    return False  # an unknown operator selects nothing (the API server would have rejected it)


def describe_pdb(pdb: Dict[str, Any]) -> str:
    status = pdb.get("status") or {}
    metadata = pdb.get("metadata") or {}
    return (
        f"PodDisruptionBudget {metadata.get('namespace')}/{metadata.get('name')} "
        f"(disruptionsAllowed={status.get('disruptionsAllowed', '?')}, "
        f"currentHealthy={status.get('currentHealthy', '?')}, desiredHealthy={status.get('desiredHealthy', '?')})"
    )


# --------------------------------------------------------------------------- the manager


@dataclass
class Outcome:
    changed: bool = False
    before: Dict[str, Any] = field(default_factory=dict)
    after: Dict[str, Any] = field(default_factory=dict)
    node: Optional[Dict[str, Any]] = None
    evicted: List[str] = field(default_factory=list)
    skipped: List[Dict[str, str]] = field(default_factory=list)
    ready: Optional[bool] = None


class NodeManager:
    """Reads the Node, writes only where it differs; ``check_mode`` writes nothing."""

    EVICTION_RETRY_SECONDS = 5.0  # kubectl drain waits 5 s between evictions refused with 429
    POLL_SECONDS = 1.0

    def __init__(
        self,
        service: ResourceService,
        spec: NodeSpec,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.spec = spec
        self.check_mode = service.check_mode
        self.wrote = False  # whether anything was written, for a failure's "changed"
        self._sleep = sleep
        self._clock = clock

    def run(self) -> Outcome:
        if self.spec.state == "absent":
            return self._absent()
        with_annotations = bool(self.spec.annotations)
        result = self.service.modify("v1", "Node", self.spec.name, None, self._build)
        self.wrote = result.changed and not self.check_mode
        outcome = Outcome(
            changed=result.changed,
            before=node_view(result.before, with_annotations),
            after=node_view(result.after, with_annotations),
            node=result.raw,
        )
        if self.spec.state == "drained":
            self._drain(outcome)
        if self.spec.wait:
            # read-only, so it runs in check mode too
            self.service.wait("v1", "Node", self.spec.name, None, is_ready, self.spec.wait_timeout, describe_readiness)
            outcome.ready = True
        else:
            outcome.ready = is_ready(outcome.node)
        return outcome

    def _build(self, current: Dict[str, Any]) -> Dict[str, Any]:
        return desired_node_fields(current, self.spec)

    def _absent(self) -> Outcome:
        node = self.service.get("v1", "Node", self.spec.name)
        outcome = Outcome(before=node_view(node, False), node=None)
        if node is None:
            return outcome
        outcome.changed = True
        self.service.delete("v1", "Node", self.spec.name)
        if self.spec.wait and not self.check_mode:
            self.service.wait(
                "v1",
                "Node",
                self.spec.name,
                None,
                lambda o: o is None,
                self.spec.wait_timeout,
                lambda o: (
                    "still present" + (" (being deleted)" if o and o["metadata"].get("deletionTimestamp") else "")
                ),
            )
        return outcome

    # -- drain ---------------------------------------------------------------------

    def _drain(self, outcome: Outcome) -> None:
        options = self.spec.drain
        pods = self.service.list("v1", "Pod", field_selector=f"spec.nodeName={self.spec.name}")
        plan = plan_drain(pods, options, self._missing_daemonsets(pods))
        outcome.skipped = plan.skipped
        outcome.before["pods"] = sorted(pod_ref(p) for p in pods)
        if plan.blocked:
            names = ", ".join(f"{b['pod']} ({b['reason']})" for b in plan.blocked)
            raise DrainError(
                f"cannot drain node {self.spec.name}{self._left_cordoned()}. Refusing to evict: {names}",
                plan.blocked,
                [],
            )
        leaving = [pod_ref(p) for p in plan.evict + plan.terminating]
        outcome.changed = outcome.changed or bool(plan.evict)
        outcome.evicted = [pod_ref(p) for p in plan.evict]
        if not self.check_mode:
            deadline = self._clock() + options.timeout
            self._evict_all(plan.evict, deadline)
            self._wait_gone(plan.evict + plan.terminating, deadline)
        outcome.after["pods"] = sorted(ref for ref in outcome.before["pods"] if ref not in leaving)

    def _left_cordoned(self) -> str:
        return " (check mode: nothing was written)" if self.check_mode else "; the node is left cordoned"

    def _missing_daemonsets(self, pods: List[Dict[str, Any]]) -> Set[str]:
        """DaemonSets (``ns/name``) that own pods here but no longer exist (as kubectl drain checks)."""
        owners: Set[Tuple[str, str]] = set()
        for pod in pods:
            controller = _controller(pod)
            if controller and controller.get("kind") == "DaemonSet":
                owners.add((str(pod["metadata"].get("namespace")), str(controller.get("name"))))
        return {
            f"{ns}/{name}" for ns, name in sorted(owners) if self.service.get("apps/v1", "DaemonSet", name, ns) is None
        }

    def _evict_all(self, pods: List[Dict[str, Any]], deadline: float) -> None:
        options = self.spec.drain
        pending = list(pods)
        done: List[str] = []
        last_reason: Dict[str, str] = {}
        while True:
            still: List[Dict[str, Any]] = []
            for pod in pending:
                try:
                    self._evict_one(pod)
                    self.wrote = True
                    done.append(pod_ref(pod))
                except K8sTooManyRequestsError as exc:
                    last_reason[pod_ref(pod)] = _causes_text(exc)
                    still.append(pod)
                except K8sNotFoundError as exc:
                    if exc.status == 404:
                        done.append(pod_ref(pod))  # gone already
                    else:
                        raise
            pending = still
            if not pending:
                return
            left = deadline - self._clock()
            if left <= 0:
                break
            self._sleep(min(self.EVICTION_RETRY_SECONDS, left))
        blocked = [{"pod": pod_ref(p), "reason": self._why_blocked(p, last_reason[pod_ref(p)])} for p in pending]
        names = "; ".join(f"{b['pod']}: {b['reason']}" for b in blocked)
        raise DrainError(
            f"drain of node {self.spec.name} timed out after {options.timeout}s{self._left_cordoned()}. "
            f"Evicted {len(done)} pod(s); still blocked: {names}",
            blocked,
            done,
        )

    def _evict_one(self, pod: Dict[str, Any]) -> None:
        metadata = pod["metadata"]
        name, namespace = metadata["name"], metadata["namespace"]
        grace = self.spec.drain.grace_period
        if self.spec.drain.disable_eviction:
            self.service.delete("v1", "Pod", name, namespace, grace_period=grace)
            return
        eviction: Dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if grace is not None:
            eviction["deleteOptions"] = {"gracePeriodSeconds": grace}
        # 429 = a PodDisruptionBudget allows no disruption now: retried by _evict_all until the timeout
        self.service.post_subresource("v1", "Pod", name, namespace, "eviction", eviction, retry_429=False)

    def _why_blocked(self, pod: Dict[str, Any], server_reason: str) -> str:
        """The server's reason plus the PodDisruptionBudget(s) that select the pod."""
        metadata = pod["metadata"]
        try:
            pdbs = self.service.list("policy/v1", "PodDisruptionBudget", metadata["namespace"])
        except K8sError:
            return server_reason
        labels = metadata.get("labels") or {}
        matching = [describe_pdb(p) for p in pdbs if selector_matches((p.get("spec") or {}).get("selector"), labels)]
        return f"{server_reason} [{'; '.join(matching)}]" if matching else server_reason

    def _wait_gone(self, pods: List[Dict[str, Any]], deadline: float) -> None:
        """Evicted pods are deleted gracefully; wait until each is gone (or replaced: new uid)."""
        waiting = {pod_ref(p): p for p in pods}
        while waiting:
            for ref, pod in list(waiting.items()):
                metadata = pod["metadata"]
                now = self.service.get("v1", "Pod", metadata["name"], metadata["namespace"])
                if now is None or (now.get("metadata") or {}).get("uid") != metadata.get("uid"):
                    del waiting[ref]
            if not waiting:
                return
            left = deadline - self._clock()
            if left <= 0:
                raise K8sTimeoutError(
                    f"drain of node {self.spec.name} timed out waiting for evicted pods to terminate"
                    f"{self._left_cordoned()}. Still terminating: {', '.join(sorted(waiting))}"
                )
            self._sleep(min(self.POLL_SECONDS, left))


def _causes_text(exc: K8sError) -> str:
    """The 429 message plus its causes (e.g. "The disruption budget web needs 2 healthy pods...")."""
    text = exc.message.split(": ", 1)[-1]
    extra = [str(c["message"]) for c in exc.causes if c.get("message")]
    return f"{text} ({'; '.join(extra)})" if extra else text
