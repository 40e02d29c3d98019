package main

// Byte extents of a disk, and small helpers the CBT model is built from.

import (
	"errors"
	"io"
	"os"
	"reflect"
	"sort"
	"syscall"
)

// extent is the half-open byte range [start, start+length) of a disk; it is what
// vSphere calls a DiskChangeExtent (start, length).
type extent struct {
	start, length int64
}

func (e extent) end() int64 { return e.start + e.length }

// addExtent inserts e into a sorted list of disjoint extents, merging overlapping
// and adjacent ones, so that every list the lab keeps is merged, sorted and non-overlapping.
func addExtent(list []extent, e extent) []extent {
	if e.length <= 0 {
		return list
	}
	out := make([]extent, 0, len(list)+1)
	i := 0
	for ; i < len(list) && list[i].end() < e.start; i++ {
		out = append(out, list[i])
	}
	merged := e
	for ; i < len(list) && list[i].start <= merged.end(); i++ {
		start, end := list[i].start, list[i].end()
		if start < merged.start {
			merged.start, merged.length = start, merged.end()-start
		}
		if end > merged.end() {
			merged.length = end - merged.start
		}
	}
	out = append(out, merged)
	return append(out, list[i:]...)
}

// unionExtents merges several extent lists into one.
func unionExtents(lists ...[]extent) []extent {
	var all []extent
	for _, l := range lists {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].start < all[b].start })
	var out []extent
	for _, e := range all {
		out = addExtent(out, e)
	}
	return out
}

// clipExtents keeps the parts of list inside [from, to).
func clipExtents(list []extent, from, to int64) []extent {
	var out []extent
	for _, e := range list {
		s, t := e.start, e.end()
		if s < from {
			s = from
		}
		if t > to {
			t = to
		}
		if t > s {
			out = append(out, extent{s, t - s})
		}
	}
	return out
}

// dataExtents lists the allocated (data) regions of a local file with
// SEEK_DATA/SEEK_HOLE, falling back to [0, size) where the file system cannot tell.
func dataExtents(path string) ([]extent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := info.Size()
	const seekData, seekHole = 3, 4 // Linux lseek(2) whence values
	var out []extent
	for off := int64(0); off < size; {
		start, err := f.Seek(off, seekData)
		if err != nil { // ENXIO: no data after off; EINVAL: not supported
			if len(out) == 0 && off == 0 && !isENXIO(err) {
				return []extent{{0, size}}, nil
			}
			break
		}
		end, err := f.Seek(start, seekHole)
		if err != nil || end > size {
			end = size
		}
		out = addExtent(out, extent{start, end - start})
		off = end
	}
	_, _ = f.Seek(0, io.SeekStart)
	return out, nil
}

// deepCopy returns a copy of v sharing no pointers, slices or maps with it (unexported
// struct fields, such as time.Time's, are copied by value). The simulator's snapshot
// keeps `*vm.Config` by value, so its device list would otherwise alias the VM's.
func deepCopy(v interface{}) interface{} {
	if v == nil {
		return nil
	}
	return copyValue(reflect.ValueOf(v)).Interface()
}

func copyValue(src reflect.Value) reflect.Value {
	switch src.Kind() {
	case reflect.Ptr:
		if src.IsNil() {
			return src
		}
		dst := reflect.New(src.Elem().Type())
		dst.Elem().Set(copyValue(src.Elem()))
		return dst
	case reflect.Interface:
		if src.IsNil() {
			return src
		}
		dst := reflect.New(src.Type()).Elem()
		dst.Set(copyValue(src.Elem()))
		return dst
	case reflect.Struct:
		dst := reflect.New(src.Type()).Elem()
		dst.Set(src)
		for i := 0; i < src.NumField(); i++ {
			if dst.Field(i).CanSet() {
				dst.Field(i).Set(copyValue(src.Field(i)))
			}
		}
		return dst
	case reflect.Slice:
		if src.IsNil() {
			return src
		}
		dst := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			dst.Index(i).Set(copyValue(src.Index(i)))
		}
		return dst
	case reflect.Map:
		if src.IsNil() {
			return src
		}
		dst := reflect.MakeMapWithSize(src.Type(), src.Len())
		for _, k := range src.MapKeys() {
			dst.SetMapIndex(k, copyValue(src.MapIndex(k)))
		}
		return dst
	default:
		return src
	}
}

func isENXIO(err error) bool { return errors.Is(err, syscall.ENXIO) }
