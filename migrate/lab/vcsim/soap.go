package main

// SOAP interception: the lab's server sits in front of vcsim's ServeMux. Requests for the
// methods below are decoded here; everything else goes to vcsim unchanged (the body is only
// searched for the method names, so discovery at scale pays nothing). vcsim is not modified
// and its objects stay its own types in the registry (simulator code type-asserts them).
//
//   - QueryChangedDiskAreas (VirtualMachine): answered here (vcsim 0.24 does not implement it);
//   - CreateSnapshot_Task: vcsim's task runs, then the disks are frozen (disks.go);
//   - RemoveSnapshot_Task, RemoveAllSnapshots_Task: disks consolidated, then vcsim's task runs;
//   - ReconfigVM_Task: vcsim's task runs, then a changeTrackingEnabled edit takes effect.
//
// vcsim runs these tasks synchronously inside the SOAP call, so by the time a client sees the
// task (success or error), the lab's part is done. Every task's info.entity is made a ManagedEntity
// (taskEntities, below), so that pyVmomi can read the TaskInfo of snapshot and FileManager tasks.

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

var interceptedMethods = [][]byte{
	[]byte("QueryChangedDiskAreas"), []byte("CreateSnapshot_Task"), []byte("RemoveSnapshot_Task"),
	[]byte("RemoveAllSnapshots_Task"), []byte("ReconfigVM_Task"),
}

var taskRef = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

func isSDKPath(p string) bool { return p == "/sdk" || p == "/sdk/vimService" }

func (l *lab) serveSDK(w http.ResponseWriter, r *http.Request, inner http.Handler) {
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var method *simulator.Method
	for _, name := range interceptedMethods {
		if bytes.Contains(body, name) {
			if m, err := simulator.UnmarshalBody(types.TypeFunc(), body); err == nil {
				method = m
			}
			break
		}
	}
	if method == nil {
		l.pass(w, r, body, inner)
		return
	}
	switch req := method.Body.(type) {
	case *types.QueryChangedDiskAreas:
		if !l.validSession(r) {
			writeFault(w, &methodFault{"", &types.NotAuthenticated{NoPermission: types.NoPermission{
				Object: req.This, PrivilegeId: "VirtualMachine.Provisioning.DiskRandomRead"}}})
			return
		}
		info, fault := l.queryChangedDiskAreas(req)
		if fault != nil {
			writeFault(w, fault)
			return
		}
		writeResponse(w, &qcdaResponse{Returnval: *info})
	case *types.CreateSnapshot_Task:
		l.createSnapshot(w, r, body, inner, req)
	case *types.RemoveSnapshot_Task:
		l.removeSnapshots(w, r, body, inner, req.This, req.RemoveChildren)
	case *types.RemoveAllSnapshots_Task:
		l.removeSnapshots(w, r, body, inner, req.This, true)
	case *types.ReconfigVM_Task:
		rec := l.forward(r, body, inner)
		if vm := getVM(req.This); vm != nil && taskSucceeded(rec) {
			l.afterReconfigure(vm, &req.Spec)
		}
		copyResponse(w, rec)
	default:
		l.pass(w, r, body, inner)
	}
}

func (l *lab) pass(w http.ResponseWriter, r *http.Request, body []byte, inner http.Handler) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	inner.ServeHTTP(w, r)
}

func (l *lab) forward(r *http.Request, body []byte, inner http.Handler) *httptest.ResponseRecorder {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	inner.ServeHTTP(rec, req)
	return rec
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// resultTask is the finished task a *_Task response names, nil when the call failed.
func resultTask(rec *httptest.ResponseRecorder) *simulator.Task {
	if rec.Code != http.StatusOK {
		return nil
	}
	m := taskRef.FindSubmatch(rec.Body.Bytes())
	if m == nil {
		return nil
	}
	task, _ := simulator.Map.Get(types.ManagedObjectReference{Type: "Task", Value: string(m[1])}).(*simulator.Task)
	return task
}

func taskSucceeded(rec *httptest.ResponseRecorder) bool {
	task := resultTask(rec)
	return task != nil && task.Info.State == types.TaskInfoStateSuccess
}

func (l *lab) createSnapshot(w http.ResponseWriter, r *http.Request, body []byte, inner http.Handler,
	req *types.CreateSnapshot_Task) {
	vm := getVM(req.This)
	if vm == nil {
		l.pass(w, r, body, inner)
		return
	}
	var keys []int32
	simulator.Map.WithLock(vm, func() { keys = diskKeys(vm.Config.Hardware.Device) })
	unlock := l.lockDisks(vm.Self, keys) // no guest write lands between vcsim's snapshot and ours
	defer unlock()
	rec := l.forward(r, body, inner)
	if task := resultTask(rec); task != nil && task.Info.State == types.TaskInfoStateSuccess {
		if ref, ok := task.Info.Result.(types.ManagedObjectReference); ok {
			if snap, ok := simulator.Map.Get(ref).(*simulator.VirtualMachineSnapshot); ok {
				if err := l.afterCreateSnapshot(vm, snap); err != nil {
					log.Printf("lab: freezing the disks of %s for %s failed: %v", vm.Self.Value, ref.Value, err)
				}
			}
		}
	}
	copyResponse(w, rec)
}

func (l *lab) removeSnapshots(w http.ResponseWriter, r *http.Request, body []byte, inner http.Handler,
	this types.ManagedObjectReference, children bool) {
	if !l.validSession(r) {
		l.pass(w, r, body, inner) // vcsim answers NotAuthenticated
		return
	}
	var vm *simulator.VirtualMachine
	if snap, ok := simulator.Map.Get(this).(*simulator.VirtualMachineSnapshot); ok {
		vm = getVM(snap.Vm)
	} else {
		vm = getVM(this)
	}
	if vm == nil {
		l.pass(w, r, body, inner)
		return
	}
	var keys []int32
	var victims []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		keys = diskKeys(vm.Config.Hardware.Device)
		if vm.Snapshot == nil {
			return
		}
		switch {
		case this.Type == "VirtualMachine":
			victims = snapshotsOf(vm.Snapshot.RootSnapshotList)
		case children:
			victims = subtree(vm.Snapshot.RootSnapshotList, this)
		default:
			victims = []types.ManagedObjectReference{this}
		}
	})
	unlock := l.lockDisks(vm.Self, keys)
	defer unlock()
	if err := l.consolidate(vm, victims); err != nil {
		log.Printf("lab: consolidating %s failed: %v", vm.Self.Value, err)
		writeFault(w, &methodFault{"consolidation failed: " + err.Error(), &types.FileFault{File: err.Error()}})
		return
	}
	copyResponse(w, l.forward(r, body, inner))
}

// validSession tells whether the request carries a live vim session cookie: it asks vcsim
// itself (CurrentTime needs a session) so that the lab and vcsim agree on who is logged in.
func (l *lab) validSession(r *http.Request) bool {
	cookie, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return false
	}
	const probe = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope ` +
		`xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
		`<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>` +
		`</soapenv:Body></soapenv:Envelope>`
	req := httptest.NewRequest(http.MethodPost, "/sdk", strings.NewReader(probe))
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	l.service.ServeSDK(rec, req)
	return rec.Code == http.StatusOK
}

// The envelope as vcsim writes it (simulator.go soapEnvelope/soapFault), so clients parse ours alike.
type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type qcdaResponse struct {
	XMLName   xml.Name             `xml:"urn:vim25 QueryChangedDiskAreasResponse"`
	Returnval types.DiskChangeInfo `xml:"returnval"`
}

type faultDetail struct {
	Fault types.AnyType
}

// MarshalXML names the detail element "<Type>Fault" with xsi:type, as vCenter does.
func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:vim25"},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

func writeEnvelope(w http.ResponseWriter, status int, body interface{}) {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	enc := xml.NewEncoder(&out)
	err := enc.Encode(&soapEnvelope{
		Enc: "http://schemas.xmlsoap.org/soap/encoding/", Env: "http://schemas.xmlsoap.org/soap/envelope/",
		XSD: "http://www.w3.org/2001/XMLSchema", XSI: "http://www.w3.org/2001/XMLSchema-instance", Body: body,
	})
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		log.Printf("lab: encoding a SOAP answer: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out.Bytes())
}

func writeResponse(w http.ResponseWriter, res interface{}) {
	writeEnvelope(w, http.StatusOK, res)
}

func writeFault(w http.ResponseWriter, f *methodFault) {
	fault := &soapFault{Code: "ServerFaultCode", String: f.msg}
	fault.Detail.Fault = &faultDetail{Fault: f.fault}
	writeEnvelope(w, http.StatusInternalServerError, struct{ Fault *soapFault }{fault})
}

// taskEntities is a registry handler that makes every new task's info.entity a ManagedEntity, as
// TaskInfo.entity is in the vSphere API ("managed entity to which the operation applies"). vcsim
// names the object the method was called on, which for VirtualMachineSnapshot, FileManager or
// VirtualDiskManager methods is no ManagedEntity, and pyVmomi then cannot read the TaskInfo at all
// (wait_for_task on RemoveSnapshot_Task or DeleteDatastoreFile_Task failed). A snapshot's task names
// its VM, as vCenter's does; the other tasks name no entity.
type taskEntities struct{}

func (taskEntities) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "LabTaskEntities", Value: "lab"}
}

func (taskEntities) PutObject(item mo.Reference) {
	task, ok := item.(*simulator.Task)
	if !ok || task.Info.Entity == nil {
		return
	}
	switch obj := simulator.Map.Get(*task.Info.Entity).(type) {
	case mo.Entity:
	case *simulator.VirtualMachineSnapshot:
		if vm := getVM(obj.Vm); vm != nil {
			ref := vm.Self
			task.Info.Entity, task.Info.EntityName = &ref, vm.Name
		}
	default:
		task.Info.Entity, task.Info.EntityName = nil, ""
	}
}

func (taskEntities) UpdateObject(mo.Reference, []types.PropertyChange) {}

func (taskEntities) RemoveObject(types.ManagedObjectReference) {}
