package deploy_test

import (
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/bridge"
)

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type k8sDeployment struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    int   `yaml:"runAsUser"`
					RunAsGroup   int   `yaml:"runAsGroup"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
					EmptyDir any `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sService struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	Spec struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sData struct {
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

// k8sKit is deploy/kubernetes, parsed.
type k8sKit struct {
	deployment k8sDeployment
	service    k8sService
	pdb        k8sPDB
	configMaps map[string]k8sData
	secrets    map[string]k8sData
}

func loadKubernetes(t *testing.T) k8sKit {
	t.Helper()
	dir := "kubernetes"
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	decodeInto(t, documents(t, filepath.Join(dir, "kustomization.yaml"))[0], &kust)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(kust.Resources, b) {
			t.Errorf("%s is not listed in kustomization.yaml's resources", b)
		}
	}
	kit := k8sKit{configMaps: map[string]k8sData{}, secrets: map[string]k8sData{}}
	kinds := map[string]int{}
	for _, r := range kust.Resources {
		for _, doc := range documents(t, filepath.Join(dir, r)) {
			kind, _ := doc["kind"].(string)
			if doc["apiVersion"] == nil || kind == "" {
				t.Fatalf("%s: a document without apiVersion or kind", r)
			}
			kinds[kind]++
			switch kind {
			case "Deployment":
				decodeInto(t, doc, &kit.deployment)
			case "Service":
				decodeInto(t, doc, &kit.service)
			case "PodDisruptionBudget":
				decodeInto(t, doc, &kit.pdb)
			case "ConfigMap", "Secret":
				var d k8sData
				decodeInto(t, doc, &d)
				if kind == "ConfigMap" {
					kit.configMaps[d.Metadata.Name] = d
				} else {
					kit.secrets[d.Metadata.Name] = d
				}
			default:
				t.Errorf("%s: unexpected kind %s", r, kind)
			}
		}
	}
	for _, k := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} {
		if kinds[k] == 0 {
			t.Fatalf("deploy/kubernetes has no %s", k)
		}
	}
	return kit
}

// TestKubernetesManifests: every manifest parses, and what the Deployment
// names exists in the program — its configuration validates (with the
// Secret's variables set to dummies) without a single warning, its
// arguments are a subcommand and the mounted config file, its probes are
// the bridge's probe routes on the port of listen, its metrics port is
// metrics.listen's, and the CA files the config names are mounted.
func TestKubernetesManifests(t *testing.T) {
	kit := loadKubernetes(t)
	d := kit.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]

	// The configuration, as the container will read it.
	requireSubcommand(t, "deployment args", c.Args)
	if len(c.Command) != 0 {
		t.Errorf("command %v overrides the image's entrypoint: give arguments only", c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %v: want serve --config FILE", c.Args)
	}
	configPath, ok := flagValue(c.Args, "config")
	if !ok {
		t.Fatalf("args %v have no --config", c.Args)
	}
	raw := mountedConfigMapFile(t, kit, c, configPath)
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil {
			continue
		}
		s, ok := kit.secrets[ef.SecretRef.Name]
		if !ok {
			t.Fatalf("envFrom names Secret %q, which the kit does not have", ef.SecretRef.Name)
		}
		for k := range s.StringData {
			env[k] = dummyValue
		}
	}
	for _, v := range variables(raw) {
		if _, ok := env[v]; !ok {
			t.Errorf("the config uses ${%s}, which no Secret of envFrom provides", v)
		}
	}
	for k := range env {
		if !slices.Contains(variables(raw), k) {
			t.Errorf("the Secret provides %s, which the config does not use", k)
		}
	}
	opt := parseConfig(t, "the ConfigMap's config.yaml", []byte(raw), env)
	if ws := opt.Warnings(); len(ws) != 0 {
		t.Errorf("the ConfigMap's config has warnings (check-config --strict would refuse it): %v", ws)
	}
	if opt.Store.Type != "redis" || !opt.Keys.Shared || opt.Directory.Type != "postgres" {
		t.Errorf("replicas need Redis, keys in the shared store and PostgreSQL; got store %s, keys shared %v, directory %s",
			opt.Store.Type, opt.Keys.Shared, opt.Directory.Type)
	}
	checkFileMounted(t, kit, c, "store.redis.ca_file", opt.Store.Redis.CAFile)
	if u := mustURL(t, opt.Directory.URL); u.Query().Get("sslrootcert") != "" {
		checkFileMounted(t, kit, c, "sslrootcert of directory.url", u.Query().Get("sslrootcert"))
	}

	// Ports and probes.
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if got := itoa(ports["http"]); got != port(t, opt.Listen) {
		t.Errorf("container port http is %s, listen is %s", got, opt.Listen)
	}
	if got := itoa(ports["metrics"]); opt.Metrics.Listen == "" || got != port(t, opt.Metrics.Listen) {
		t.Errorf("container port metrics is %s, metrics.listen is %q", got, opt.Metrics.Listen)
	}
	prefix := issuerPath(t, opt.Issuer)
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, prefix + bridge.PathHealthz},
		{"readinessProbe", c.ReadinessProbe, prefix + bridge.PathReadyz},
		{"startupProbe", c.StartupProbe, prefix + bridge.PathHealthz},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s path %q, the bridge serves %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if p.probe.HTTPGet.Port != "http" {
			t.Errorf("%s port %q: want the named port http (listen)", p.name, p.probe.HTTPGet.Port)
		}
	}

	// How it runs.
	if d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", d.Spec.Replicas)
	}
	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser != 65532 || sc.RunAsGroup != 65532 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, uid and gid 65532 (the image's user)", sc)
	}
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext: want readOnlyRootFilesystem, no privilege escalation, capabilities dropped")
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("no memory limit")
	}
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if need := opt.Shutdown.DrainDelay + opt.Shutdown.Timeout + 15*time.Second; grace < need {
		t.Errorf("terminationGracePeriodSeconds %s is shorter than drain_delay + timeout + 15 s of back-channel logouts (%s)", grace, need)
	}

	// The Service, the PodDisruptionBudget and the Deployment select the pods.
	podLabels := d.Spec.Template.Metadata.Labels
	for name, sel := range map[string]map[string]string{
		"deployment selector": d.Spec.Selector.MatchLabels, "service selector": kit.service.Spec.Selector,
		"pdb selector": kit.pdb.Spec.Selector.MatchLabels,
	} {
		if len(sel) == 0 {
			t.Errorf("%s is empty", name)
		}
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("%s %s=%s does not match the pod's labels %v", name, k, v, podLabels)
			}
		}
	}
	for _, p := range kit.service.Spec.Ports {
		if _, ok := ports[p.TargetPort]; !ok {
			t.Errorf("service port %s targets %q, not a container port name", p.Name, p.TargetPort)
		}
	}
	if m := kit.pdb.Spec.MinAvailable; m < 1 || m >= d.Spec.Replicas {
		t.Errorf("pdb minAvailable %d: want at least 1 and fewer than the replicas (%d), or nodes cannot drain", m, d.Spec.Replicas)
	}
}

// mountedConfigMapFile is the text of the ConfigMap key mounted at path in c.
func mountedConfigMapFile(t *testing.T, kit k8sKit, c k8sContainer, file string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		key := ""
		switch {
		case m.SubPath != "" && m.MountPath == file:
			key = m.SubPath
		case m.SubPath == "" && path.Dir(file) == path.Clean(m.MountPath):
			key = path.Base(file)
		default:
			continue
		}
		for _, v := range kit.deployment.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm, ok := kit.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s names ConfigMap %q, which the kit does not have", v.Name, v.ConfigMap.Name)
			}
			text, ok := cm.Data[key]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %q", cm.Metadata.Name, key)
			}
			return text
		}
	}
	t.Fatalf("%s is not mounted from a ConfigMap", file)
	return ""
}

// checkFileMounted: file is a key of a Secret mounted as a directory.
func checkFileMounted(t *testing.T, kit k8sKit, c k8sContainer, what, file string) {
	t.Helper()
	if file == "" {
		return
	}
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" || path.Dir(file) != path.Clean(m.MountPath) {
			continue
		}
		for _, v := range kit.deployment.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				if _, ok := kit.secrets[v.Secret.SecretName].StringData[path.Base(file)]; ok {
					return
				}
			}
		}
	}
	t.Errorf("%s %s is not a key of a Secret mounted at %s", what, file, path.Dir(file))
}

// itoa: a container port as text; 0 (missing) is "".
func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
