package sensor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"golang.org/x/sys/unix"
)

// Netlink message types of the audit protocol used here (linux/audit.h).
const (
	auditGet       = 1000
	auditSet       = 1001
	auditListRules = 1013
	auditAddRule   = 1011
	auditDelRule   = 1012

	// auditNlgrpReadlog is the multicast group of read-only audit listeners.
	auditNlgrpReadlog = 1

	// firstRecordType is the smallest message type that carries an audit
	// record (AUDIT_FIRST_USER_MSG); smaller types are control messages.
	firstRecordType = 1100

	// defaultRequestTimeout bounds a control request when ctx has no deadline.
	defaultRequestTimeout = 5 * time.Second
)

// errTimeout is returned when the kernel does not answer a request in time.
var errTimeout = errors.New("no answer from the kernel")

// nlSocket is a NETLINK_AUDIT socket: a control socket (requests and their
// acknowledgements) or a data socket (the audit record stream).
type nlSocket struct {
	fd  int
	seq atomic.Uint32
	buf []byte
}

// openNetlink opens and binds an audit netlink socket. groups is 0 for a
// unicast socket or auditNlgrpReadlog to receive the multicast copy of the
// record stream. rcvbuf, when > 0, sets the receive buffer size (forced past
// rmem_max as root).
func openNetlink(groups uint32, rcvbuf int) (*nlSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("open audit netlink socket: %w", err)
	}
	if rcvbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind audit netlink socket (groups %d): %w", groups, err)
	}
	return &nlSocket{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (s *nlSocket) close() error { return unix.Close(s.fd) }

// send sends one message to the kernel and returns its sequence number.
func (s *nlSocket) send(typ uint16, flags uint16, data []byte) (uint32, error) {
	seq := s.seq.Add(1)
	b := make([]byte, unix.NLMSG_HDRLEN+len(data))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], flags|unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	copy(b[unix.NLMSG_HDRLEN:], data)
	for {
		err := unix.Sendto(s.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("send netlink message type %d: %w", typ, err)
		}
		return seq, nil
	}
}

// recv reads one datagram from the kernel, waiting until ctx is done (or
// defaultRequestTimeout when ctx has no deadline). The returned slice is
// backed by the socket's buffer.
func (s *nlSocket) recv(ctx context.Context) ([]byte, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultRequestTimeout)
	}
	for {
		n, from, err := unix.Recvfrom(s.fd, s.buf, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
				continue // not from the kernel
			}
			return s.buf[:n], nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
		default:
			return nil, fmt.Errorf("receive from audit netlink socket: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, errTimeout
		}
		if wait > 100*time.Millisecond {
			wait = 100 * time.Millisecond // re-check ctx regularly
		}
		fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(wait/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("poll audit netlink socket: %w", err)
		}
	}
}

// reply waits for the messages answering request seq, calling fn for each
// non-error message; it returns when the kernel acknowledges (or rejects)
// the request, or when fn returns done. Messages of other requests and
// audit records are passed to other (which may be nil).
func (s *nlSocket) reply(ctx context.Context, seq uint32, fn func(m syscall.NetlinkMessage) (done bool), other func(typ uint16, data []byte)) error {
	for {
		b, err := s.recv(ctx)
		if err != nil {
			return err
		}
		msgs, err := parseNetlink(b)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type >= firstRecordType && m.Header.Seq == 0 {
				if other != nil {
					other(m.Header.Type, m.Data)
				}
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return errors.New("short netlink error message")
				}
				if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
					return syscall.Errno(errno)
				}
				if fn == nil {
					return nil
				}
			case unix.NLMSG_DONE:
				return nil
			default:
				if fn != nil && fn(m) {
					return nil
				}
			}
		}
	}
}

// parseNetlink splits a datagram into netlink messages. Audit records are a
// single message whose header length is not always reliable, so a datagram
// whose first message does not parse is returned as one message.
func parseNetlink(b []byte) ([]syscall.NetlinkMessage, error) {
	if len(b) < unix.NLMSG_HDRLEN {
		return nil, fmt.Errorf("short netlink message (%d bytes)", len(b))
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err == nil && len(msgs) > 0 {
		return msgs, nil
	}
	h := *(*syscall.NlMsghdr)(unsafe.Pointer(&b[0]))
	return []syscall.NetlinkMessage{{Header: h, Data: b[unix.NLMSG_HDRLEN:]}}, nil
}

// request sends a message that the kernel acknowledges and waits for the
// acknowledgement.
func (s *nlSocket) request(ctx context.Context, typ uint16, data []byte, other func(uint16, []byte)) error {
	seq, err := s.send(typ, unix.NLM_F_ACK, data)
	if err != nil {
		return err
	}
	return s.reply(ctx, seq, nil, other)
}

// status asks the kernel for the audit status.
func (s *nlSocket) status(ctx context.Context) (*libaudit.AuditStatus, error) {
	seq, err := s.send(auditGet, 0, nil)
	if err != nil {
		return nil, err
	}
	var st *libaudit.AuditStatus
	err = s.reply(ctx, seq, func(m syscall.NetlinkMessage) bool {
		if m.Header.Type != auditGet {
			return false
		}
		var v libaudit.AuditStatus
		if err := v.FromWireFormat(m.Data); err != nil {
			return false
		}
		st = &v
		return true
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("get audit status: %w", err)
	}
	if st == nil {
		return nil, errors.New("get audit status: no status in the kernel's answer")
	}
	return st, nil
}

// setStatus applies the fields of st selected by st.Mask.
func (s *nlSocket) setStatus(ctx context.Context, st libaudit.AuditStatus, other func(uint16, []byte)) error {
	return s.request(ctx, auditSet, statusWire(st), other)
}

// statusWire encodes an audit_status for AUDIT_SET.
func statusWire(st libaudit.AuditStatus) []byte {
	vals := []uint32{
		uint32(st.Mask), st.Enabled, st.Failure, st.PID, st.RateLimit,
		st.BacklogLimit, st.Lost, st.Backlog, st.FeatureBitmap,
		st.BacklogWaitTime, st.BacklogWaitTimeActual,
	}
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// listRules returns the kernel's audit rules in wire format.
func (s *nlSocket) listRules(ctx context.Context) ([][]byte, error) {
	seq, err := s.send(auditListRules, unix.NLM_F_ACK, nil)
	if err != nil {
		return nil, err
	}
	var rules [][]byte
	// The kernel acks, and sends one message per rule then NLMSG_DONE.
	err = s.reply(ctx, seq, func(m syscall.NetlinkMessage) bool {
		if m.Header.Type == auditListRules {
			rules = append(rules, append([]byte(nil), m.Data...))
		}
		return false
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("list audit rules: %w", err)
	}
	return rules, nil
}

// isRecord reports whether a netlink message type carries an audit record
// the sensor should process (not a control message, not the kernel's
// AUDIT_REPLACE probe of the audit daemon).
func isRecord(typ uint16) bool {
	return typ >= firstRecordType && auparse.AuditMessageType(typ) != auparse.AUDIT_REPLACE
}
