package main

// Changed Block Tracking (CBT) and snapshot disk semantics for the lab's vcsim.
//
// govmomi 0.24's simulator records config.changeTrackingEnabled and keeps a snapshot
// tree, but its snapshots share the VM's disk files and it has no
// VirtualMachine.QueryChangedDiskAreas. This file adds what a warm migration needs,
// following the vSphere Web Services API reference:
//
//   - VirtualMachineConfigSpec.changeTrackingEnabled (ReconfigVM_Task): turning CBT on
//     gives every disk a new change-tracking identity (a UUID, shown like vSphere's
//     "52 xx xx xx xx xx xx xx-xx xx xx xx xx xx xx xx") and epoch 1; turning it off drops the
//     identity, so changeIds handed out before are stale once CBT is on again.
//   - VirtualDiskFlatVer2BackingInfo.changeId: "<identity>/<n>" names the point where epoch n
//     was sealed (all guest writes of epochs <= n are before it). The VM's current backing shows
//     the last sealed point, so a query from it may report writes twice (the API allows false
//     positives: "it is guaranteed that no changes will be missed") but never misses one.
//   - VirtualMachine.CreateSnapshot_Task: vcsim's own task runs, then each disk of the
//     snapshot's config.hardware.device keeps the BASE file name and carries the changeId of the
//     epoch the snapshot seals; the VM's disk switches to a delta "<base>-00000N.vmdk" (the next
//     free N) whose `parent` is the frozen backing. Guest writes go to the delta from then on, so
//     the frozen file keeps the exact bytes of the snapshot (read it with datastore HTTP GET).
//     The snapshot's device list is a deep copy: the VM's and the snapshot's backings are
//     distinct objects.
//   - VirtualMachineSnapshot.RemoveSnapshot_Task / VirtualMachine.RemoveAllSnapshots_Task:
//     before vcsim's task runs (so before it can report success) the child delta of each removed
//     snapshot's file is consolidated into that file (its written extents copied in place), the
//     delta is deleted, and every backing that named it (the VM's, a newer snapshot's) names the
//     parent file again.
//   - VirtualMachine.QueryChangedDiskAreas(snapshot, deviceKey, startOffset, changeId) returns a
//     DiskChangeInfo {startOffset, length, changedArea[] of DiskChangeExtent {start, length}}
//     with the merged, sorted extents written after changeId and contained in `snapshot`;
//     changeId "*" gives the allocated extents of the disk as of the snapshot (the data regions,
//     SEEK_DATA/SEEK_HOLE, of the frozen file chain). One answer covers at most -cbt-page-bytes
//     from startOffset; callers go on at startOffset+length until capacityInBytes. An extent that
//     crosses a page boundary is split there.
//
// Faults, as vCenter raises them for this method (FileFault carries the hostd message keys that
// clients such as the vSphere CSI driver match on):
//   - CBT off for the VM: FileFault{file}, faultMessage "vim.hostd.vmsvc.cbt.noTrack";
//   - snapshot taken while CBT was off: FileFault, "vim.hostd.vmsvc.cbt.noEpoch";
//   - changeId of another identity (CBT reset) or newer than the snapshot: FileFault,
//     "vim.hostd.vmsvc.cbt.cannotGetChanges";
//   - changeId not "*" nor "<uuid>/<n>": InvalidArgument{invalidProperty: "changeId"};
//   - deviceKey not a virtual disk of the VM (or snapshot): InvalidArgument{invalidProperty: "deviceKey"};
//   - startOffset outside [0, capacity): InvalidArgument{invalidProperty: "startOffset"};
//   - snapshot of another VM: NotFound; no such snapshot: ManagedObjectNotFound;
//   - snapshot unset while the VM is not powered off ("using the current snapshot will only work
//     for virtual machines that are powered off"): InvalidPowerState{requestedState: poweredOff}.
//
// What the lab does NOT model: CBT taking effect only after a stun/unstun cycle (power cycle or
// snapshot) and the -ctk.vmdk files; per-disk ctkEnabled extraConfig; block granularity (extents
// are byte exact, no false positives); branching snapshot trees after RevertToSnapshot (a file with
// two children is not consolidated, and reverting does not discard a delta); memory snapshots and
// quiescing; the `consolidate=false` option (always consolidates); layoutEx entries of delta files;
// the delta's redo-log format (a delta is a sparse flat file, as long as its parent, holding only
// the guest's writes); CBT state surviving a restart of the simulator (it lives in memory).
// Writes through datastore HTTP PUT are not guest writes: they are not tracked. vcsim fills only
// capacityInKB of a disk (capacityInBytes stays unset): clients take capacityInKB*1024 then, as the lab does.

import (
	"crypto/rand"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type diskID struct {
	vm  string
	key int32
}

// trackedDisk is the lab's state for one disk of one VM. Its mutex serialises guest writes,
// snapshots, consolidation and queries of that disk.
type trackedDisk struct {
	mu      sync.Mutex
	ctID    string              // change-tracking identity, "" while CBT is off
	seq     int64               // the open epoch: guest writes are recorded in it
	changes map[int64][]extent  // epoch -> merged extents written during it
	deltas  map[string][]extent // delta file (datastore path) -> extents written into it
}

type lab struct {
	mu        sync.Mutex
	disks     map[diskID]*trackedDisk
	pageBytes int64
	service   *simulator.Service
	username  string
	password  string
}

func newLab(service *simulator.Service, username, password string, pageBytes int64) *lab {
	return &lab{disks: map[diskID]*trackedDisk{}, pageBytes: pageBytes, service: service,
		username: username, password: password}
}

func (l *lab) disk(vm types.ManagedObjectReference, key int32) *trackedDisk {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := diskID{vm.Value, key}
	d := l.disks[id]
	if d == nil {
		d = &trackedDisk{changes: map[int64][]extent{}, deltas: map[string][]extent{}}
		l.disks[id] = d
	}
	return d
}

// lockDisks locks the given disks in key order (one order everywhere: no deadlock).
func (l *lab) lockDisks(vm types.ManagedObjectReference, keys []int32) func() {
	sorted := append([]int32(nil), keys...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	var held []*trackedDisk
	for _, k := range sorted {
		d := l.disk(vm, k)
		d.mu.Lock()
		held = append(held, d)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].mu.Unlock()
		}
	}
}

// newIdentity starts change tracking afresh: a new identity, epoch 1, nothing recorded.
func (d *trackedDisk) newIdentity() {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] = 0x52
	parts := make([]string, 16)
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	d.ctID = strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
	d.seq = 1
	d.changes = map[int64][]extent{}
}

// changeID is the last sealed point of the disk, "" while CBT is off.
func (d *trackedDisk) changeID() string {
	if d.ctID == "" {
		return ""
	}
	return d.ctID + "/" + strconv.FormatInt(d.seq-1, 10)
}

// seal closes the open epoch (at a snapshot) and returns the changeId naming that point.
func (d *trackedDisk) seal() string {
	id := d.ctID + "/" + strconv.FormatInt(d.seq, 10)
	d.seq++
	return id
}

func parseChangeID(s string) (string, int64, bool) {
	i := strings.LastIndex(s, "/")
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}

func getVM(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}

func asDisk(dev types.BaseVirtualDevice) (*types.VirtualDisk, *types.VirtualDiskFlatVer2BackingInfo) {
	disk, ok := dev.(*types.VirtualDisk)
	if !ok {
		return nil, nil
	}
	backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if !ok {
		return nil, nil
	}
	return disk, backing
}

func findDisk(devices []types.BaseVirtualDevice, key int32) (int, *types.VirtualDisk, *types.VirtualDiskFlatVer2BackingInfo) {
	for i, dev := range devices {
		if disk, backing := asDisk(dev); disk != nil && disk.Key == key {
			return i, disk, backing
		}
	}
	return -1, nil, nil
}

func diskKeys(devices []types.BaseVirtualDevice) []int32 {
	var keys []int32
	for _, dev := range devices {
		if disk, _ := asDisk(dev); disk != nil {
			keys = append(keys, disk.Key)
		}
	}
	return keys
}

func capacityOf(disk *types.VirtualDisk) int64 {
	if disk.CapacityInBytes > 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}

func cbtOn(vm *simulator.VirtualMachine) bool {
	return vm.Config != nil && vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
}

// localPath maps "[ds] dir/file.vmdk" to the file under the datastore's directory.
func localPath(dsRefs []types.ManagedObjectReference, dsPath string) (string, error) {
	if !strings.HasPrefix(dsPath, "[") || !strings.Contains(dsPath, "]") {
		return "", fmt.Errorf("not a datastore path: %q", dsPath)
	}
	name := dsPath[1:strings.Index(dsPath, "]")]
	rel := strings.TrimSpace(dsPath[strings.Index(dsPath, "]")+1:])
	candidates := dsRefs
	for _, e := range simulator.Map.All("Datastore") {
		candidates = append(candidates, e.Entity().Self)
	}
	for _, ref := range candidates {
		if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok && ds.Name == name {
			return path.Join(ds.Info.GetDatastoreInfo().Url, path.Clean("/"+rel)), nil
		}
	}
	return "", fmt.Errorf("no datastore %q", name)
}

// nextDelta is the first free "<root>-00000N.vmdk" for a disk whose current chain is `backing`.
func nextDelta(dsRefs []types.ManagedObjectReference, backing *types.VirtualDiskFlatVer2BackingInfo) (string, error) {
	root := backing
	used := map[string]bool{}
	for b := backing; b != nil; b = b.Parent {
		used[b.FileName] = true
		root = b
	}
	prefix := strings.TrimSuffix(root.FileName, ".vmdk")
	for n := 1; n < 1000000; n++ {
		name := fmt.Sprintf("%s-%06d.vmdk", prefix, n)
		if used[name] {
			continue
		}
		p, err := localPath(dsRefs, name)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free delta name for %s", root.FileName)
}

// afterCreateSnapshot freezes the VM's disks under the snapshot vcsim just made (disks locked).
func (l *lab) afterCreateSnapshot(vm *simulator.VirtualMachine, snap *simulator.VirtualMachineSnapshot) error {
	var ferr error
	simulator.Map.WithLock(vm, func() {
		cbt := cbtOn(vm)
		devices := vm.Config.Hardware.Device
		snapDevices := deepCopy(devices).([]types.BaseVirtualDevice)
		vmDevices := append([]types.BaseVirtualDevice(nil), devices...)
		for i, dev := range devices {
			disk, backing := asDisk(dev)
			if disk == nil {
				continue
			}
			td := l.disk(vm.Self, disk.Key)
			changeID := ""
			if cbt {
				if td.ctID == "" {
					td.newIdentity()
				}
				changeID = td.seal()
			}
			_, sb := asDisk(snapDevices[i])
			sb.ChangeId = changeID

			local, err := localPath(vm.Datastore, backing.FileName)
			if err != nil {
				ferr = err
				return
			}
			var size int64
			if info, err := os.Stat(local); err == nil {
				size = info.Size()
			}
			delta, err := nextDelta(vm.Datastore, backing)
			if err != nil {
				ferr = err
				return
			}
			deltaLocal, _ := localPath(vm.Datastore, delta)
			f, err := os.OpenFile(deltaLocal, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				ferr = err
				return
			}
			err = f.Truncate(size) // sparse: as long as its parent, holding nothing yet
			_ = f.Close()
			if err != nil {
				ferr = err
				return
			}
			nd := deepCopy(disk).(*types.VirtualDisk)
			nb := nd.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			parent := deepCopy(backing).(*types.VirtualDiskFlatVer2BackingInfo)
			parent.ChangeId = changeID
			nb.FileName = delta
			nb.Parent = parent
			nb.ChangeId = changeID
			nb.DeltaDiskFormat = string(types.VirtualDiskDeltaDiskFormatRedoLogFormat)
			vmDevices[i] = nd
			td.deltas[delta] = nil
		}
		snap.Config.Hardware.Device = snapDevices
		simulator.Map.Update(vm, configChanged(vmDevices))
	})
	return ferr
}

// snapshotsOf lists the VM's snapshots, children before their parents (the order to remove them in).
func snapshotsOf(tree []types.VirtualMachineSnapshotTree) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	for _, node := range tree {
		out = append(out, snapshotsOf(node.ChildSnapshotList)...)
		out = append(out, node.Snapshot)
	}
	return out
}

// subtree lists `ref` and its descendants, children first.
func subtree(tree []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) []types.ManagedObjectReference {
	for _, node := range tree {
		if node.Snapshot == ref {
			return append(snapshotsOf(node.ChildSnapshotList), ref)
		}
		if found := subtree(node.ChildSnapshotList, ref); found != nil {
			return found
		}
	}
	return nil
}

// consolidate removes the disks of each snapshot in `victims` (in order; disks locked): the child
// delta of the snapshot's file is written into that file and deleted.
func (l *lab) consolidate(vm *simulator.VirtualMachine, victims []types.ManagedObjectReference) error {
	var ferr error
	simulator.Map.WithLock(vm, func() {
		if vm.Snapshot == nil {
			return
		}
		gone := map[types.ManagedObjectReference]bool{}
		all := snapshotsOf(vm.Snapshot.RootSnapshotList)
		vmDevices := append([]types.BaseVirtualDevice(nil), vm.Config.Hardware.Device...)
		changed := false
		for _, victim := range victims {
			snap, ok := simulator.Map.Get(victim).(*simulator.VirtualMachineSnapshot)
			if !ok {
				continue
			}
			gone[victim] = true
			for _, dev := range snap.Config.Hardware.Device {
				disk, frozen := asDisk(dev)
				if disk == nil {
					continue
				}
				// the backings that may name the frozen file's child: the VM's and the other snapshots'
				var holders []*types.VirtualDiskFlatVer2BackingInfo
				vmIndex, vmDisk, vmBacking := findDisk(vmDevices, disk.Key)
				if vmDisk != nil {
					vmDisk = deepCopy(vmDisk).(*types.VirtualDisk)
					vmBacking = vmDisk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
					holders = append(holders, vmBacking)
				}
				for _, other := range all {
					if gone[other] {
						continue
					}
					if s, ok := simulator.Map.Get(other).(*simulator.VirtualMachineSnapshot); ok {
						if _, _, b := findDisk(s.Config.Hardware.Device, disk.Key); b != nil {
							holders = append(holders, b)
						}
					}
				}
				children := map[string]bool{}
				for _, h := range holders {
					for b := h; b != nil && b.Parent != nil; b = b.Parent {
						if b.Parent.FileName == frozen.FileName {
							children[b.FileName] = true
						}
					}
				}
				if len(children) != 1 { // no child (disk gone) or a branch: not modelled
					continue
				}
				var child string
				for c := range children {
					child = c
				}
				td := l.disk(vm.Self, disk.Key)
				if err := mergeInto(vm.Datastore, child, frozen.FileName, td.deltas[child]); err != nil {
					ferr = err
					return
				}
				if frozen.Parent != nil {
					td.deltas[frozen.FileName] = unionExtents(td.deltas[frozen.FileName], td.deltas[child])
				}
				delete(td.deltas, child)
				for _, h := range holders {
					dropFromChain(h, child)
				}
				if vmDisk != nil {
					vmDevices[vmIndex] = vmDisk
					changed = true
				}
			}
		}
		if changed {
			simulator.Map.Update(vm, configChanged(vmDevices))
		}
	})
	return ferr
}

// mergeInto writes the extents of delta file `child` into `parent` in place, then deletes `child`.
func mergeInto(dsRefs []types.ManagedObjectReference, child, parent string, written []extent) error {
	childLocal, err := localPath(dsRefs, child)
	if err != nil {
		return err
	}
	parentLocal, err := localPath(dsRefs, parent)
	if err != nil {
		return err
	}
	src, err := os.Open(childLocal)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(parentLocal, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, e := range written {
		for off := e.start; off < e.end(); {
			n := int64(len(buf))
			if e.end()-off < n {
				n = e.end() - off
			}
			if _, err := src.ReadAt(buf[:n], off); err != nil {
				_ = dst.Close()
				return err
			}
			if _, err := dst.WriteAt(buf[:n], off); err != nil {
				_ = dst.Close()
				return err
			}
			off += n
		}
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Remove(childLocal)
}

// dropFromChain replaces, in the chain starting at h, the backing naming `name` by its parent
// (keeping the changeId of the point it stood for).
func dropFromChain(h *types.VirtualDiskFlatVer2BackingInfo, name string) {
	if h.FileName == name && h.Parent != nil {
		changeID := h.ChangeId
		parent := deepCopy(h.Parent).(*types.VirtualDiskFlatVer2BackingInfo)
		*h = *parent
		h.ChangeId = changeID
		return
	}
	for b := h; b.Parent != nil; b = b.Parent {
		if b.Parent.FileName == name {
			changeID := b.Parent.ChangeId
			b.Parent = deepCopy(b.Parent.Parent).(*types.VirtualDiskFlatVer2BackingInfo)
			if b.Parent != nil {
				b.Parent.ChangeId = changeID
			}
			return
		}
	}
}

// afterReconfigure applies a changeTrackingEnabled edit to the disks' identities and backings.
func (l *lab) afterReconfigure(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec) {
	if spec.ChangeTrackingEnabled == nil {
		return
	}
	var keys []int32
	simulator.Map.WithLock(vm, func() { keys = diskKeys(vm.Config.Hardware.Device) })
	unlock := l.lockDisks(vm.Self, keys)
	defer unlock()
	simulator.Map.WithLock(vm, func() {
		on := cbtOn(vm)
		devices := append([]types.BaseVirtualDevice(nil), vm.Config.Hardware.Device...)
		for i, dev := range devices {
			disk, _ := asDisk(dev)
			if disk == nil {
				continue
			}
			td := l.disk(vm.Self, disk.Key)
			if on && td.ctID == "" {
				td.newIdentity()
			} else if !on {
				td.ctID = ""
				td.changes = map[int64][]extent{}
			}
			nd := deepCopy(disk).(*types.VirtualDisk)
			nd.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId = td.changeID()
			devices[i] = nd
		}
		simulator.Map.Update(vm, configChanged(devices))
	})
}

// configChanged is what vCenter publishes when a VM's devices change (a snapshot switches its disks to
// deltas, a consolidation back, tracking gets a new identity): the devices, and a new config.changeVersion
// and config.modified, as on any configuration change (vcsim itself never moves them), so readers that
// look at changeVersion to know what to read again (incremental discovery) see it.
func configChanged(devices interface{}) []types.PropertyChange {
	now := time.Now().UTC()
	return []types.PropertyChange{
		{Name: "config.hardware.device", Val: devices},
		{Name: "config.changeVersion", Val: now.Format(time.RFC3339Nano)},
		{Name: "config.modified", Val: now},
	}
}
