package main

// VirtualMachine.QueryChangedDiskAreas for the lab (see disks.go for the model and the faults).

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// methodFault is a fault with the faultstring vCenter would send along.
type methodFault struct {
	msg   string
	fault types.BaseMethodFault
}

func cbtFault(file, key, msg string) *methodFault {
	f := &types.FileFault{File: file}
	f.FaultMessage = []types.LocalizableMessage{{Key: key, Message: msg}}
	return &methodFault{msg: msg, fault: f}
}

func invalidArgument(property, msg string) *methodFault {
	return &methodFault{msg: msg, fault: &types.InvalidArgument{InvalidProperty: property}}
}

func (l *lab) queryChangedDiskAreas(req *types.QueryChangedDiskAreas) (*types.DiskChangeInfo, *methodFault) {
	vm := getVM(req.This)
	if vm == nil {
		return nil, &methodFault{fmt.Sprintf("managed object not found: %s", req.This),
			&types.ManagedObjectNotFound{Obj: req.This}}
	}
	var snap *simulator.VirtualMachineSnapshot
	if req.Snapshot != nil {
		obj := simulator.Map.Get(*req.Snapshot)
		if obj == nil {
			return nil, &methodFault{fmt.Sprintf("managed object not found: %s", *req.Snapshot),
				&types.ManagedObjectNotFound{Obj: *req.Snapshot}}
		}
		s, ok := obj.(*simulator.VirtualMachineSnapshot)
		if !ok {
			return nil, invalidArgument("snapshot", fmt.Sprintf("%s is not a VirtualMachineSnapshot", *req.Snapshot))
		}
		if s.Vm != vm.Self {
			return nil, &methodFault{fmt.Sprintf("snapshot %s is not a snapshot of %s", s.Self.Value, vm.Self.Value),
				&types.NotFound{}}
		}
		snap = s
	}

	td := l.disk(vm.Self, req.DeviceKey)
	td.mu.Lock()
	defer td.mu.Unlock()

	var (
		disk    *types.VirtualDisk
		top     *types.VirtualDiskFlatVer2BackingInfo
		dsRefs  []types.ManagedObjectReference
		cbt     bool
		power   types.VirtualMachinePowerState
		devices []types.BaseVirtualDevice
	)
	simulator.Map.WithLock(vm, func() {
		cbt = cbtOn(vm)
		power = vm.Runtime.PowerState
		dsRefs = append(dsRefs, vm.Datastore...)
		devices = vm.Config.Hardware.Device
		if snap != nil {
			devices = snap.Config.Hardware.Device
		}
		_, d, b := findDisk(devices, req.DeviceKey)
		if d != nil {
			disk, top = deepCopy(d).(*types.VirtualDisk), deepCopy(b).(*types.VirtualDiskFlatVer2BackingInfo)
		}
	})
	if snap == nil && power != types.VirtualMachinePowerStatePoweredOff {
		return nil, &methodFault{"changes against the current state need a powered-off VM; pass a snapshot",
			&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: power}}
	}
	if disk == nil {
		return nil, invalidArgument("deviceKey", fmt.Sprintf("device %d is not a virtual disk of %s", req.DeviceKey, vm.Self.Value))
	}
	if !cbt {
		return nil, cbtFault(top.FileName, "vim.hostd.vmsvc.cbt.noTrack", "change tracking is not enabled for this virtual machine")
	}
	if td.ctID == "" {
		td.newIdentity()
	}
	capacity := capacityOf(disk)
	if req.StartOffset < 0 || req.StartOffset >= capacity {
		return nil, invalidArgument("startOffset", fmt.Sprintf("startOffset %d is outside the disk (capacity %d)", req.StartOffset, capacity))
	}

	// the point the answer ends at: the snapshot's sealed epoch, or now
	endID, endSeq := td.ctID, td.seq
	if snap != nil {
		if top.ChangeId == "" {
			return nil, cbtFault(top.FileName, "vim.hostd.vmsvc.cbt.noEpoch", "the snapshot was taken while change tracking was off")
		}
		var ok bool
		if endID, endSeq, ok = parseChangeID(top.ChangeId); !ok {
			return nil, cbtFault(top.FileName, "vim.hostd.vmsvc.cbt.noEpoch", "the snapshot has no change epoch")
		}
	}
	if endID != td.ctID {
		return nil, cbtFault(top.FileName, "vim.hostd.vmsvc.cbt.cannotGetChanges", "change tracking was reset after the snapshot was taken")
	}

	var areas []extent
	if req.ChangeId == "*" {
		for b := top; b != nil; b = b.Parent {
			if b.Parent != nil {
				areas = unionExtents(areas, td.deltas[b.FileName])
				continue
			}
			local, err := localPath(dsRefs, b.FileName)
			if err != nil {
				return nil, cbtFault(b.FileName, "vim.hostd.vmsvc.cbt.cannotGetChanges", err.Error())
			}
			data, err := dataExtents(local)
			if err != nil {
				return nil, cbtFault(b.FileName, "vim.hostd.vmsvc.cbt.cannotGetChanges", err.Error())
			}
			areas = unionExtents(areas, data)
		}
	} else {
		id, since, ok := parseChangeID(req.ChangeId)
		if !ok {
			return nil, invalidArgument("changeId", fmt.Sprintf("changeId %q is neither \"*\" nor \"<uuid>/<n>\"", req.ChangeId))
		}
		if id != td.ctID {
			return nil, cbtFault(top.FileName, "vim.hostd.vmsvc.cbt.cannotGetChanges",
				"changeId belongs to another change-tracking session (change tracking was reset)")
		}
		if since > endSeq {
			return nil, cbtFault(top.FileName, "vim.hostd.vmsvc.cbt.cannotGetChanges", "changeId is newer than the snapshot")
		}
		for epoch, list := range td.changes {
			if epoch > since && epoch <= endSeq {
				areas = unionExtents(areas, list)
			}
		}
	}

	length := capacity - req.StartOffset
	if l.pageBytes > 0 && length > l.pageBytes {
		length = l.pageBytes
		// A span with no changed area reaches on to the next changed area (or the end of the disk), as
		// vCenter's answers are bounded by what they carry: a big, mostly unchanged disk costs a few
		// calls, not one per page.
		if len(clipExtents(areas, req.StartOffset, req.StartOffset+length)) == 0 {
			length = capacity - req.StartOffset
			for _, e := range areas {
				if e.start >= req.StartOffset+l.pageBytes {
					length = e.start - req.StartOffset
					break
				}
			}
		}
	}
	info := &types.DiskChangeInfo{StartOffset: req.StartOffset, Length: length}
	for _, e := range clipExtents(areas, req.StartOffset, req.StartOffset+length) {
		info.ChangedArea = append(info.ChangedArea, types.DiskChangeExtent{Start: e.start, Length: e.length})
	}
	return info, nil
}
