"""A test-only stand-in for the ``k3s`` binary (never shipped in a role).

K3s itself cannot be downloaded in this environment, so the lab installs this instead, through the
roles' normal airgap path (``python -m lab.k3s_standin.build DIR`` makes the airgap directory). It keeps
the part of K3s's contract the roles and playbooks rely on, and nothing more:

- ``k3s --version`` prints ``k3s version v1.31.4+k3s1 (<hash>)`` and the Go version, like K3s;
- ``k3s server`` reads ``/etc/rancher/k3s/config.yaml`` plus ``config.yaml.d/*.yaml`` (name order, later
  keys win, ``key+`` appends), takes the token from ``token``/``token-file``/``K3S_TOKEN``/
  ``K3S_TOKEN_FILE``, writes ``<data-dir>/server/token`` (0600, ``K10<ca-hash>::server:<password>``) with
  ``node-token`` linking to it, serves the lab's Kubernetes test API server (``lab.kubeapi``) on
  ``https-listen-port`` (6443) with a CA kept in ``<data-dir>/server/tls``, writes the admin kubeconfig
  (``write-kubeconfig``, ``write-kubeconfig-mode``; server ``https://127.0.0.1:6443``), registers its
  Node (Ready, control-plane/master/etcd role labels, kubeletVersion = the version) and tells systemd
  READY=1 (``Type=notify``). With ``server: https://<first>:6443`` it joins that server instead: it
  registers its Node there and forwards its own port 6443 to it (one shared datastore, as embedded etcd);
- ``k3s agent`` (``server`` and a token required) registers its Node on the server's API and stays up;
  a wrong token is refused (401) and the agent keeps retrying, logging why, as K3s does;
- ``k3s kubectl get --raw PATH`` (what the roles use to wait for the API and for Node readiness);
- ``k3s token rotate [--token|-t T] [--new-token N] [--server|-s URL] [--data-dir D]`` (``K3S_TOKEN``,
  ``K3S_URL``; no config file, no environment variable for the new token): a ``PUT /v1-k3s/token`` to the
  supervisor with basic auth ``server:<token>`` (the token file is read when ``--token`` is not given; a
  ``K10`` token's CA hash is checked against ``/cacerts``). Prints K3s's warning, then ``Token rotated,
  restart k3s nodes with new token``; a wrong token is refused (``401 Unauthorized``, exit 1). The server
  rewrites ``<data-dir>/server/token`` at once; joins keep using the token the server started with until
  it restarts, and a restart with the old token then fails (``bootstrap data already found and encrypted
  with different token``), as in K3s.

The supervisor paths (``/cacerts``, ``/v1-k3s/server-bootstrap``, ``/v1-k3s/token``) share port 6443 with
the API, as in K3s. The admin kubeconfig's credential is random and kept in
``<data-dir>/server/cred/admin-token`` (0600), so it does not change when the token is rotated (K3s uses an
admin client certificate); a joining server gets it from the bootstrap data.

The server also plays the controllers the storage and backup roles wait for (K3s's helm-controller,
longhorn-manager, Velero) on the objects they write: see ``controllers.py``.

Shortcuts, on purpose: no containers, no etcd, no kubelet. A node registers with an API bearer credential
derived from the join token (K3s hands out a kubelet certificate through the supervisor instead); agents do
not verify the server's certificate; ``token rotate`` does not hide its arguments from ``ps`` as K3s does.
On SIGTERM a node marks itself NotReady (``Unknown``), which K3s's node lifecycle controller does after
about 40 s; a running node does not post heartbeats, so its Ready condition's ``lastHeartbeatTime`` changes
only when it (re-)registers.
"""
