package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/network"
	"bulwark.dev/bulwark/policy/api"
)

// Networks are the engine's per-tenant networks (a bridge each, through CNI): a tenant sees,
// names and removes only its own, and two tenants can both have net1. A network's Docker id is
// derived from its tenant, name and creation time, so it names one network for good and says
// nothing about another tenant's.

func networkID(n *network.Network) string {
	sum := sha256.Sum256([]byte(n.Tenant + "/" + n.Name + "/" + n.Created.String()))
	return hex.EncodeToString(sum[:])
}

func tenantCaller(c *call) engine.Caller {
	return engine.Caller{Identity: engine.Identity{UID: c.who.UID, GID: c.who.GID, Principal: "bulwarkd"}, Tenant: c.who.Tenant}
}

// resolveNetwork finds ref (a name, a full id or a unique id prefix) among who's tenant's
// networks only; another tenant's is "not found", as one that does not exist.
func (s *Server) resolveNetwork(ref string, who engine.Caller) (*network.Network, error) {
	list, err := s.eng.NetworkList(who)
	if err != nil {
		return nil, err
	}
	var found *network.Network
	for _, n := range list {
		if n.Name == ref || networkID(n) == ref {
			return n, nil
		}
		if len(ref) >= 1 && isHex(ref) && strings.HasPrefix(networkID(n), ref) {
			if found != nil {
				return nil, statusError(http.StatusBadRequest, "network %s is ambiguous: more than one network has an id with this prefix", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "network %s not found", ref)
	}
	return found, nil
}

// networkTarget resolves the route's {id} as the caller's network, for the API policy.
func (s *Server) networkTarget(r *http.Request, c *call) (*api.Target, error) {
	n, err := s.resolveNetwork(r.PathValue("id"), tenantCaller(c))
	if err != nil {
		return nil, err
	}
	c.object = n.Name
	return &api.Target{Kind: "network", ID: n.Name, Owner: n.Tenant}, nil
}

// networkCreateKeys are the fields of a network create Docker clients send; each is checked
// below, any other with a value is refused.
var networkCreateKeys = []string{"Name", "Driver", "Scope", "EnableIPv4", "EnableIPv6", "IPAM", "Internal",
	"Attachable", "Ingress", "ConfigOnly", "ConfigFrom", "Options", "Labels", "CheckDuplicate"}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request, c *call) error {
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return statusError(http.StatusBadRequest, "malformed request body: a JSON object is required")
	}
	if bad := unasked(doc, networkCreateKeys); len(bad) > 0 {
		return statusError(http.StatusBadRequest, "bulwarkd cannot honour %s for a network: refused rather than ignored", strings.Join(bad, ", "))
	}
	var req mnetwork.CreateRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return statusError(http.StatusBadRequest, "malformed request body: %v", err)
	}
	subnet, err := checkNetworkCreate(&req)
	if err != nil {
		return err
	}
	n, err := s.eng.NetworkCreate(tenantCaller(c), req.Name, subnet)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, mnetwork.CreateResponse{ID: networkID(n)})
	return nil
}

// checkNetworkCreate refuses what a network here cannot be (every network is a local IPv4
// bridge of the tenant, its subnet a /24 of the engine's pool) and returns the subnet asked for.
func checkNetworkCreate(req *mnetwork.CreateRequest) (netip.Prefix, error) {
	bad := func(field, why string) (netip.Prefix, error) {
		return netip.Prefix{}, statusError(http.StatusBadRequest, "network create: %s: %s", field, why)
	}
	switch {
	case req.Name == "":
		return bad("Name", "a name is required")
	case req.Driver != "" && req.Driver != "bridge":
		return bad("Driver", fmt.Sprintf("%q: bulwarkd's networks are bridges", req.Driver))
	case req.Scope != "" && req.Scope != "local":
		return bad("Scope", fmt.Sprintf("%q: networks are local to this host", req.Scope))
	case req.EnableIPv4 != nil && !*req.EnableIPv4:
		return bad("EnableIPv4", "networks are IPv4")
	case req.EnableIPv6 != nil && *req.EnableIPv6:
		return bad("EnableIPv6", "networks are IPv4 only")
	case req.Internal:
		return bad("Internal", "not supported; limit a container's connections with the run policy's egress instead")
	case req.Attachable, req.Ingress, req.ConfigOnly, req.ConfigFrom != nil:
		return bad("Attachable, Ingress, ConfigOnly, ConfigFrom", "swarm and config-only networks are not supported")
	case len(req.Options) > 0:
		return bad("Options", fmt.Sprintf("%v: driver options are not supported", req.Options))
	case len(req.Labels) > 0:
		return bad("Labels", "network labels are not supported")
	}
	ipam := req.IPAM
	if ipam == nil {
		return netip.Prefix{}, nil
	}
	switch {
	case ipam.Driver != "" && ipam.Driver != "default":
		return bad("IPAM.Driver", fmt.Sprintf("%q: addresses come from the network's host-local pool", ipam.Driver))
	case len(ipam.Options) > 0:
		return bad("IPAM.Options", "not supported")
	case len(ipam.Config) > 1:
		return bad("IPAM.Config", "one subnet per network")
	case len(ipam.Config) == 0:
		return netip.Prefix{}, nil
	}
	cfg := ipam.Config[0]
	switch {
	case !cfg.Subnet.IsValid():
		return bad("IPAM.Config.Subnet", "a subnet is required with an IPAM configuration")
	case cfg.IPRange.IsValid() || len(cfg.AuxAddress) > 0:
		return bad("IPAM.Config", "IPRange and AuxiliaryAddresses are not supported")
	case cfg.Gateway.IsValid() && cfg.Gateway != cfg.Subnet.Masked().Addr().Next():
		return bad("IPAM.Config.Gateway", fmt.Sprintf("%s: the gateway is the subnet's first address", cfg.Gateway))
	}
	return cfg.Subnet, nil
}

// networkView is n as Docker shows it; containers maps the engine's container ids to their
// daemon names (a container the daemon did not create keeps its id).
func (s *Server) networkView(n *network.Network, tenant string) mnetwork.Inspect {
	v := mnetwork.Inspect{
		Network: mnetwork.Network{
			Name: n.Name, ID: networkID(n), Created: n.Created, Scope: "local", Driver: "bridge", EnableIPv4: true,
			IPAM: mnetwork.IPAM{Driver: "default", Options: map[string]string{},
				Config: []mnetwork.IPAMConfig{{Subnet: n.Subnet, Gateway: n.Gateway}}},
			ConfigFrom: mnetwork.ConfigReference{}, Options: map[string]string{"dev.bulwark.bridge": n.Bridge},
			Labels: map[string]string{},
		},
		Containers: map[string]mnetwork.EndpointResource{},
	}
	for _, ep := range n.Containers {
		name := ep.Container
		if rec, ok := s.recs.get(ep.Container); ok && rec.Tenant == tenant {
			name = rec.Name
		}
		v.Containers[ep.Container] = mnetwork.EndpointResource{Name: name, EndpointID: ep.Container,
			IPv4Address: netip.PrefixFrom(ep.IP, n.Subnet.Bits())}
	}
	return v
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request, c *call) error {
	if f := r.URL.Query().Get("filters"); f != "" && f != "{}" {
		return notImplemented("network list filters")
	}
	list, err := s.eng.NetworkList(tenantCaller(c))
	if err != nil {
		return err
	}
	out := []mnetwork.Summary{}
	for _, n := range list {
		out = append(out, mnetwork.Summary{Network: s.networkView(n, c.who.Tenant).Network})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request, c *call) error {
	if boolParam(r, "verbose") {
		return notImplemented("verbose network inspect (swarm)")
	}
	if sc := r.URL.Query().Get("scope"); sc != "" && sc != "local" {
		return errdefs.Errorf(errdefs.ErrNotFound, "network %s not found in scope %s", r.PathValue("id"), sc)
	}
	n, err := s.eng.NetworkInspect(tenantCaller(c), c.object)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.networkView(n, c.who.Tenant))
	return nil
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.eng.NetworkRemove(tenantCaller(c), c.object); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request, c *call) error {
	if f := r.URL.Query().Get("filters"); f != "" && f != "{}" {
		return notImplemented("network prune filters")
	}
	removed, _, err := s.eng.NetworkPrune(tenantCaller(c))
	if err != nil {
		return err
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, http.StatusOK, mnetwork.PruneReport{NetworksDeleted: removed})
	return nil
}

// networkConnect answers network connect and disconnect: a container joins its one network when
// it starts and leaves it when it stops; the engine cannot move a running container.
func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request, c *call) error {
	return notImplemented("network connect and disconnect: a container is attached to the one network it was created with (docker run --network NAME) and cannot join or leave one while it exists")
}

// mapNetworking maps the create request's network mode, published ports and endpoint
// configuration onto the engine request; what it cannot honour is refused with the field.
func mapNetworking(cfg *container.Config, hc *container.HostConfig, nc *mnetwork.NetworkingConfig, er *engine.Request) error {
	refuse := func(field, why string) error {
		return statusError(http.StatusBadRequest, "%s: %s", field, why)
	}
	switch m := string(hc.NetworkMode); {
	case m == "" || m == "default" || m == "none":
		// Docker's "default" is the daemon's default network; bulwarkd's is none (loopback
		// only), and -p or -P take the tenant's bridge, as bulwark run -p does.
		if m == "none" {
			er.Network = "none"
		}
	case m == "host":
		return statusError(http.StatusForbidden, "HostConfig.NetworkMode: host is refused: a container never shares the host's network namespace (it would reach every host service and port); publish ports with -p instead")
	case strings.HasPrefix(m, "container:"):
		return refuse("HostConfig.NetworkMode", fmt.Sprintf("%q: a container never joins another's network namespace; put both on one network and reach it by name", m))
	default:
		er.Network = m
	}
	if nc != nil {
		for name, ep := range nc.EndpointsConfig {
			if name != string(hc.NetworkMode) {
				return refuse("NetworkingConfig.EndpointsConfig", fmt.Sprintf("network %q: a container has one network, its NetworkMode (%q)", name, hc.NetworkMode))
			}
			if ep == nil {
				continue
			}
			for _, al := range ep.Aliases {
				if !containerNameRE.MatchString(al) {
					return refuse("NetworkingConfig.EndpointsConfig."+name+".Aliases", fmt.Sprintf("%q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*", al))
				}
			}
			er.NetworkAliases = append(er.NetworkAliases, ep.Aliases...)
			b, _ := json.Marshal(ep)
			var doc map[string]any
			json.Unmarshal(b, &doc)
			if bad := unasked(doc, []string{"Aliases"}); len(bad) > 0 {
				return refuse("NetworkingConfig.EndpointsConfig."+name, fmt.Sprintf("%s: not supported (addresses come from the network's pool; a container is reached by its name)", strings.Join(bad, ", ")))
			}
		}
	}
	ports := make([]mnetwork.Port, 0, len(hc.PortBindings))
	for p := range hc.PortBindings {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].String() < ports[j].String() })
	for _, port := range ports {
		if port.Proto() != "tcp" && port.Proto() != "udp" {
			return refuse("HostConfig.PortBindings", fmt.Sprintf("%s: want tcp or udp", port))
		}
		for _, b := range hc.PortBindings[port] {
			if b.HostPort == "" || b.HostPort == "0" {
				return refuse("HostConfig.PortBindings", fmt.Sprintf("%s: a host port is required (-p HOSTPORT:%d); -P publishes the image's exposed ports on free ones", port, port.Num()))
			}
			p := b.HostPort + ":" + strconv.Itoa(int(port.Num())) + "/" + string(port.Proto())
			if b.HostIP.IsValid() {
				p = b.HostIP.String() + ":" + p
			}
			er.Publish = append(er.Publish, p)
		}
	}
	er.PublishAll = hc.PublishAllPorts
	if hc.PublishAllPorts && cfg != nil {
		for p := range cfg.ExposedPorts {
			if _, published := hc.PortBindings[p]; !published {
				return refuse("Config.ExposedPorts", fmt.Sprintf("%s with -P: --expose is not supported; -P publishes the ports the image exposes", p))
			}
		}
	}
	return nil
}

// dropEmptyEndpoints removes from a create request's NetworkingConfig the keys beside
// EndpointsConfig whose value is null or {}: the Python SDK (docker 7.x, run(network=NAME))
// sends {"NAME": null} there, which asks nothing (NetworkMode names the network) and which
// dockerd ignores; anything else stays for the strict decoding to refuse.
func dropEmptyEndpoints(raw []byte) []byte {
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil || doc["NetworkingConfig"] == nil {
		return raw
	}
	var nc map[string]json.RawMessage
	if json.Unmarshal(doc["NetworkingConfig"], &nc) != nil {
		return raw
	}
	changed := false
	for k, v := range nc {
		if t := strings.TrimSpace(string(v)); k != "EndpointsConfig" && (t == "null" || t == "{}") {
			delete(nc, k)
			changed = true
		}
	}
	if !changed {
		return raw
	}
	doc["NetworkingConfig"], _ = json.Marshal(nc)
	out, err := json.Marshal(doc)
	if err != nil {
		return raw
	}
	return out
}

// networkSettings is what inspect shows of rec's network: its address on its network and its
// published ports, while it runs (a stopped container holds neither).
func (s *Server) networkSettings(rec *record, c engine.Caller, running bool) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: mnetwork.PortMap{}, Networks: map[string]*mnetwork.EndpointSettings{}}
	a := s.attachment(rec, c, running)
	if a == nil {
		return ns
	}
	ep := &mnetwork.EndpointSettings{EndpointID: a.Container, IPAddress: a.IP, DNSNames: append([]string{}, a.Aliases...)}
	if n, err := s.eng.NetworkInspect(c, a.Network); err == nil {
		ep.NetworkID, ep.Gateway, ep.IPPrefixLen = networkID(n), n.Gateway, n.Subnet.Bits()
	}
	ns.Networks[a.Network] = ep
	for _, p := range a.Ports {
		port, err := mnetwork.ParsePort(fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
		if err != nil {
			continue
		}
		hb := mnetwork.PortBinding{HostPort: strconv.Itoa(p.HostPort)}
		hb.HostIP, _ = netip.ParseAddr(p.HostIP)
		ns.Ports[port] = append(ns.Ports[port], hb)
	}
	return ns
}

// attachment is rec's membership of its network while it runs, else nil.
func (s *Server) attachment(rec *record, c engine.Caller, running bool) *network.Attachment {
	if !running {
		return nil
	}
	a, err := s.eng.NetworkAttachment(rec.ID, c)
	if err != nil {
		return nil
	}
	return a
}

// portSummaries is ps's PORTS column for a running container.
func (s *Server) portSummaries(rec *record, c engine.Caller, running bool) []container.PortSummary {
	out := []container.PortSummary{}
	if a := s.attachment(rec, c, running); a != nil {
		for _, p := range a.Ports {
			ip, _ := netip.ParseAddr(p.HostIP)
			out = append(out, container.PortSummary{IP: ip, PrivatePort: uint16(p.ContainerPort), PublicPort: uint16(p.HostPort), Type: p.Protocol})
		}
	}
	return out
}
