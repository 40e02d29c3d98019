// Command vcsim-lab runs one govmomi vCenter simulator for the migrate lab.
//
// It is built in GOPATH mode against Debian's golang-github-vmware-govmomi-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim-lab main.go
//
// With -vm 0 and -empty the inventory holds only the service content, and the
// lab seeds a named topology through the vSphere API; otherwise the stock VPX
// model is created (used by `migrate lab up --bare` for scale runs).
// The password comes from the VCSIM_PASSWORD environment variable so that it
// never appears on a command line.
//
// The lab adds CBT, snapshot disk semantics, a guest-write endpoint and ranged datastore
// writes (disks.go, query.go, soap.go, http.go). To add them without changing vcsim, the
// lab's own HTTPS server listens on -listen and sends every request vcsim does not need
// changed to vcsim's ServeMux; vcsim's own server is closed right after it starts.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	_ "github.com/vmware/govmomi/vapi/simulator" // vAPI REST endpoints (tagging)
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	certFile := flag.String("cert", "", "TLS certificate (PEM); empty serves plain http")
	keyFile := flag.String("key", "", "TLS private key (PEM)")
	instanceUUID := flag.String("uuid", "", "about.instanceUuid to report (distinct per instance)")
	username := flag.String("username", "administrator@vsphere.local", "login user name")
	urlFile := flag.String("url-file", "", "write the service URL here once listening")
	empty := flag.Bool("empty", false, "start with no datacenter; the caller builds the topology")
	vms := flag.Int("vm", 2, "VMs per resource pool (model mode)")
	clusters := flag.Int("cluster", 1, "clusters per datacenter (model mode)")
	hosts := flag.Int("host", 3, "hosts per cluster (model mode)")
	pools := flag.Int("pool", 0, "child resource pools per cluster (model mode)")
	hostCores := flag.Int("host-cores", 0, "physical cores per host (0 keeps the simulator default)")
	hostMemoryMB := flag.Int64("host-memory-mb", 0, "memory per host in MiB (0 keeps the simulator default)")
	pageBytes := flag.Int64("cbt-page-bytes", 64<<20,
		"QueryChangedDiskAreas covers at most this many bytes of the disk per call (0: the whole disk)")
	flag.Parse()

	setHostHardware(int16(*hostCores), *hostMemoryMB)

	model := simulator.VPX()
	if *empty {
		model.Datacenter = 0
		model.Portgroup = 0
		model.Host = 0
		model.Cluster = 0
		model.ClusterHost = 0
		model.Datastore = 0
		model.Machine = 0
	} else {
		model.Host = 0
		model.Cluster = *clusters
		model.ClusterHost = *hosts
		model.Pool = *pools
		model.Machine = *vms
		model.Autostart = true
	}
	if *instanceUUID != "" {
		model.ServiceContent.About.InstanceUuid = *instanceUUID
	}

	if err := model.Create(); err != nil {
		log.Fatalf("create model: %v", err)
	}
	defer model.Remove()

	password := os.Getenv("VCSIM_PASSWORD")
	if password == "" {
		log.Fatal("VCSIM_PASSWORD is not set")
	}
	// vcsim's own server only registers its handlers: it listens on a throw-away port and is
	// closed once the lab's server (which wraps the same mux) listens on -listen.
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(*username, password)}
	model.Service.RegisterEndpoints = true

	var tlsConfig *tls.Config
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("load TLS key pair: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		model.Service.TLS = tlsConfig
	}

	inner := model.Service.NewServer()
	innerHost := inner.URL.Host
	inner.Close()

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen on %s: %v", *listen, err)
	}
	u := url.URL{Scheme: "http", Host: listener.Addr().String(), Path: inner.URL.Path}
	if tlsConfig != nil {
		u.Scheme = "https"
		listener = tls.NewListener(listener, tlsConfig)
	}
	retarget(innerHost, u.Host)

	lab := newLab(model.Service, *username, password, *pageBytes)
	simulator.Map.AddHandler(taskEntities{})
	front := &http.Server{Handler: lab.handler(model.Service.ServeMux), ErrorLog: log.New(ioutil.Discard, "", 0)}
	go func() {
		if err := front.Serve(listener); err != nil && err != http.ErrServerClosed {
			log.Fatalf("serve: %v", err)
		}
	}()
	defer front.Close()

	if *urlFile != "" {
		tmp := *urlFile + ".tmp"
		if err := ioutil.WriteFile(tmp, []byte(u.String()+"\n"), 0o644); err != nil {
			log.Fatalf("write url file: %v", err)
		}
		if err := os.Rename(tmp, *urlFile); err != nil {
			log.Fatalf("write url file: %v", err)
		}
	}
	fmt.Println(u.String())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// setHostHardware changes the template every new host is built from, so that
// hosts look like the servers they stand for (e.g. an i4i.metal: 64 cores, 1 TiB).
func setHostHardware(cores int16, memoryMB int64) {
	hw := esx.HostSystem.Summary.Hardware
	if cores > 0 {
		esx.HostHardwareInfo.CpuInfo.NumCpuPackages = 2
		esx.HostHardwareInfo.CpuInfo.NumCpuCores = cores
		esx.HostHardwareInfo.CpuInfo.NumCpuThreads = 2 * cores
		hw.NumCpuPkgs = 2
		hw.NumCpuCores = cores
		hw.NumCpuThreads = 2 * cores
	}
	if memoryMB > 0 {
		esx.HostHardwareInfo.MemorySize = memoryMB * 1024 * 1024
		hw.MemorySize = memoryMB * 1024 * 1024
	}
}

// retarget points what vcsim advertises about itself (service host name, "*.uri" and
// vcsim.server.url options) from its closed server to the lab's.
func retarget(from, to string) {
	simulator.Map.SessionManager().ServiceHostName = to
	m := simulator.Map.OptionManager()
	for i := range m.Setting {
		setting := m.Setting[i].GetOptionValue()
		if value, ok := setting.Value.(string); ok && strings.Contains(value, from) {
			setting.Value = strings.ReplaceAll(value, from, to)
		}
	}
}
