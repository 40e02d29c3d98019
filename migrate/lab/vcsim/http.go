package main

// HTTP endpoints the lab adds beside vcsim's.
//
// POST /lab/guest/write?vm=<moref>&key=<deviceKey>&offset=<bytes>   (body: the bytes)
//
//	What a guest OS writing to its disk does, since vcsim runs no guests. Authenticated by HTTP
//	basic (the lab's user name and VCSIM_PASSWORD) or a live vim session cookie (else 401).
//	404: no such VM, or the key is not one of its disks; 409: the VM is not powered on (a stopped
//	guest writes nothing); 400: bad parameters, empty body, or offset+length beyond the disk's
//	capacity; 413: body over 64 MiB. The bytes go to the disk's CURRENT backing (the newest
//	delta while a snapshot exists, else the base file) and, with CBT on, are recorded in the
//	disk's open epoch. 200 with JSON {vm, key, file, offset, length, changeId}.
//
// GET /lab/guest/vms   (same authentication)
//
//	The VMs a guest workload can write to: JSON {"vms": [{moref, name, powerState,
//	changeTrackingEnabled, disks: [{key, file, capacity, size}]}]}, where file is the disk's
//	current backing (a delta while a snapshot exists) and size that file's length, as a datastore
//	HTTP HEAD of it would give.
//
// PUT /folder/<path>?dcPath=..&dsName=.. with "Content-Range: bytes A-B/TOTAL"
//
//	A random-access writer of the target site's disks (what VDDK/NBD gives a real migration
//	tool): writes the body in place at offset A without truncating (creating the file if
//	missing), then extends the file to TOTAL if it is shorter ("*" leaves the length alone).
//	400 when the header is malformed or the body is not exactly B-A+1 bytes. Without
//	Content-Range, PUT keeps vcsim's create-or-replace. GET (with Range) and HEAD stay vcsim's
//	(http.FileServer). Like vcsim's /folder, this does not check the session (vCenter does).

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

const maxGuestWrite = 64 << 20

// handler routes the lab's additions and hands everything else to vcsim's mux.
func (l *lab) handler(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/lab/guest/write":
			l.guestWrite(w, r)
		case r.URL.Path == "/lab/guest/vms":
			l.guestVMs(w, r)
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/folder/") && r.Header.Get("Content-Range") != "":
			l.rangedPut(w, r)
		case r.Method == http.MethodPost && isSDKPath(r.URL.Path):
			l.serveSDK(w, r, inner)
		default:
			inner.ServeHTTP(w, r)
		}
	})
}

func (l *lab) authorized(r *http.Request) bool {
	if user, password, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(user), []byte(l.username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(password), []byte(l.password)) == 1
	}
	return l.validSession(r)
}

func httpError(w http.ResponseWriter, status int, format string, args ...interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

// admit answers 405 for another method and 401 without credentials; true when the request may go on.
func (l *lab) admit(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method != method {
		w.Header().Set("Allow", method)
		httpError(w, http.StatusMethodNotAllowed, "use "+method)
		return false
	}
	if !l.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="vcsim-lab"`)
		httpError(w, http.StatusUnauthorized, "log in: HTTP basic or a vim session cookie")
		return false
	}
	return true
}

func (l *lab) guestWrite(w http.ResponseWriter, r *http.Request) {
	if !l.admit(w, r, http.MethodPost) {
		return
	}
	q := r.URL.Query()
	key, err1 := strconv.ParseInt(q.Get("key"), 10, 32)
	offset, err2 := strconv.ParseInt(q.Get("offset"), 10, 64)
	if q.Get("vm") == "" || err1 != nil || err2 != nil {
		httpError(w, http.StatusBadRequest, "need vm=<moref>, key=<deviceKey> and offset=<bytes>")
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxGuestWrite+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if len(data) > maxGuestWrite {
		httpError(w, http.StatusRequestEntityTooLarge, "at most %d bytes per write", maxGuestWrite)
		return
	}
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: q.Get("vm")}
	vm := getVM(ref)
	if vm == nil {
		httpError(w, http.StatusNotFound, "no virtual machine %s", ref.Value)
		return
	}
	td := l.disk(ref, int32(key))
	td.mu.Lock()
	defer td.mu.Unlock()
	var (
		file     string
		isDelta  bool
		capacity int64
		found    bool
		power    types.VirtualMachinePowerState
		cbt      bool
		dsRefs   []types.ManagedObjectReference
	)
	simulator.Map.WithLock(vm, func() {
		power, cbt = vm.Runtime.PowerState, cbtOn(vm)
		dsRefs = append(dsRefs, vm.Datastore...)
		if _, disk, backing := findDisk(vm.Config.Hardware.Device, int32(key)); disk != nil {
			found, file, isDelta, capacity = true, backing.FileName, backing.Parent != nil, capacityOf(disk)
		}
	})
	switch {
	case !found:
		httpError(w, http.StatusNotFound, "%s has no virtual disk with key %d", ref.Value, key)
		return
	case power != types.VirtualMachinePowerStatePoweredOn:
		httpError(w, http.StatusConflict, "%s is %s: its guest writes nothing", ref.Value, power)
		return
	case len(data) == 0 || offset < 0 || offset+int64(len(data)) > capacity:
		httpError(w, http.StatusBadRequest, "write of %d bytes at %d is outside the disk (capacity %d)",
			len(data), offset, capacity)
		return
	}
	local, err := localPath(dsRefs, file)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE, 0o600)
	if err == nil {
		_, err = f.WriteAt(data, offset)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "writing %s: %v", file, err)
		return
	}
	e := extent{offset, int64(len(data))}
	if isDelta {
		td.deltas[file] = addExtent(td.deltas[file], e)
	}
	if cbt {
		if td.ctID == "" {
			td.newIdentity()
		}
		td.changes[td.seq] = addExtent(td.changes[td.seq], e)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]interface{}{
		"vm": ref.Value, "key": key, "file": file, "offset": offset, "length": len(data), "changeId": td.changeID(),
	})
}

type guestDisk struct {
	Key      int32  `json:"key"`
	File     string `json:"file"`
	Capacity int64  `json:"capacity"`
	Size     int64  `json:"size"`
}

type guestVM struct {
	Moref      string      `json:"moref"`
	Name       string      `json:"name"`
	PowerState string      `json:"powerState"`
	CBT        bool        `json:"changeTrackingEnabled"`
	Disks      []guestDisk `json:"disks"`
	dsRefs     []types.ManagedObjectReference
}

func (l *lab) guestVMs(w http.ResponseWriter, r *http.Request) {
	if !l.admit(w, r, http.MethodGet) {
		return
	}
	vms := []guestVM{}
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		item := guestVM{Moref: vm.Self.Value, Disks: []guestDisk{}}
		simulator.Map.WithLock(vm, func() {
			item.Name, item.PowerState, item.CBT = vm.Name, string(vm.Runtime.PowerState), cbtOn(vm)
			item.dsRefs = append(item.dsRefs, vm.Datastore...)
			if vm.Config == nil {
				return
			}
			for _, dev := range vm.Config.Hardware.Device {
				if disk, backing := asDisk(dev); disk != nil {
					item.Disks = append(item.Disks, guestDisk{Key: disk.Key, File: backing.FileName, Capacity: capacityOf(disk)})
				}
			}
		})
		for i := range item.Disks {
			if local, err := localPath(item.dsRefs, item.Disks[i].File); err == nil {
				if info, err := os.Stat(local); err == nil {
					item.Disks[i].Size = info.Size()
				}
			}
		}
		vms = append(vms, item)
	}
	sort.Slice(vms, func(a, b int) bool { return vms[a].Name < vms[b].Name })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]interface{}{"vms": vms})
}

var contentRange = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

func (l *lab) rangedPut(w http.ResponseWriter, r *http.Request) {
	m := contentRange.FindStringSubmatch(strings.TrimSpace(r.Header.Get("Content-Range")))
	if m == nil {
		httpError(w, http.StatusBadRequest, "Content-Range must be \"bytes A-B/TOTAL\"")
		return
	}
	first, _ := strconv.ParseInt(m[1], 10, 64)
	last, _ := strconv.ParseInt(m[2], 10, 64)
	total := int64(-1)
	if m[3] != "*" {
		total, _ = strconv.ParseInt(m[3], 10, 64)
	}
	if last < first || (total >= 0 && total <= last) {
		httpError(w, http.StatusBadRequest, "Content-Range %q is not a range inside the file", m[0])
		return
	}
	want := last - first + 1
	data, err := io.ReadAll(io.LimitReader(r.Body, want+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if int64(len(data)) != want {
		httpError(w, http.StatusBadRequest, "Content-Range says %d bytes, the body has %d", want, len(data))
		return
	}
	ds := findDatastore(r.URL.Query().Get("dcPath"), r.URL.Query().Get("dsName"))
	if ds == nil {
		httpError(w, http.StatusNotFound, "no such datastore")
		return
	}
	rel := path.Clean("/" + strings.TrimPrefix(r.URL.Path, "/folder/"))
	p := path.Join(ds.Info.GetDatastoreInfo().Url, rel)
	_ = os.MkdirAll(path.Dir(p), 0o700)
	_, statErr := os.Stat(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err == nil {
		_, err = f.WriteAt(data, first)
		if err == nil && total >= 0 {
			var info os.FileInfo
			if info, err = f.Stat(); err == nil && info.Size() < total {
				err = f.Truncate(total)
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "writing %s: %v", rel, err)
		return
	}
	if os.IsNotExist(statErr) {
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// findDatastore resolves dsName (and dcPath, the datacenter's inventory path) like vcsim's
// /folder handler: an empty name means the only datastore there is.
func findDatastore(dcPath, dsName string) *simulator.Datastore {
	var found []*simulator.Datastore
	for _, e := range simulator.Map.All("Datastore") {
		ds, ok := e.(*simulator.Datastore)
		if !ok || (dsName != "" && ds.Name != dsName) {
			continue
		}
		if dcPath != "" && datacenterName(ds) != path.Base(dcPath) {
			continue
		}
		found = append(found, ds)
	}
	if len(found) != 1 {
		return nil
	}
	return found[0]
}

func datacenterName(e mo.Entity) string {
	for parent := e.Entity().Parent; parent != nil; {
		obj, ok := simulator.Map.Get(*parent).(mo.Entity)
		if !ok {
			return ""
		}
		if parent.Type == "Datacenter" {
			return obj.Entity().Name
		}
		parent = obj.Entity().Parent
	}
	return ""
}
