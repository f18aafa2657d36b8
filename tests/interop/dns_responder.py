"""A small authoritative DNS responder for the S2S tests (stdlib only).

It answers, on 127.0.0.1 over UDP and TCP on one port, from a fixed table:

  SRV   _xmpp-server._tcp.<domain>  -> (priority, weight, port, target)
  A     <name>                      -> IPv4 address

A name that is in the table but has no record of the type asked gets an
empty NOERROR answer (NODATA); any other name gets NXDOMAIN. Names are
compared case-insensitively without the final dot. Every query it answered
is kept in .queries as (name, type name, transport) for the tests to
check which lookups were made.

    dns = DnsResponder()
    dns.add_srv('_xmpp-server._tcp.exch.example', 'xmpp.exch.example', 15224)
    dns.add_a('xmpp.exch.example', '127.0.0.1')
    dns.start()          # dns.port: the port on 127.0.0.1
    ...
    dns.stop()

Run alone (python3 dns_responder.py PORT NAME=A... SRVNAME=TARGET:PORT...)
it serves until interrupted, for trying things by hand.
"""
import socket
import socketserver
import struct
import sys
import threading

TYPE_A = 1
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_OPT = 41
TYPE_NAMES = {1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX',
              16: 'TXT', 28: 'AAAA', 33: 'SRV', 52: 'TLSA', 255: 'ANY'}

RCODE_OK = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4

TTL = 5


def _norm(name):
    return name.rstrip('.').lower()


def _encode_name(name):
    out = b''
    for label in _norm(name).split('.'):
        if label:
            raw = label.encode('ascii')
            if len(raw) > 63:
                raise ValueError('label too long: %r' % label)
            out += bytes([len(raw)]) + raw
    return out + b'\0'


def _decode_name(msg, off):
    """(name, offset after the name); follows compression pointers."""
    labels = []
    jumped = False
    end = None
    hops = 0
    while True:
        if off >= len(msg):
            raise ValueError('name past the end')
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ValueError('bad pointer')
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped = True
            hops += 1
            if hops > 32:
                raise ValueError('pointer loop')
            continue
        if n & 0xC0:
            raise ValueError('bad label type')
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode('ascii', 'replace'))
        off += n
    return '.'.join(labels), (end if jumped else off)


class DnsResponder:
    def __init__(self, host='127.0.0.1', port=0):
        self.host = host
        self.want_port = port
        self.port = None
        self.srv = {}   # name -> [(prio, weight, port, target)]
        self.a = {}     # name -> [ipv4]
        self.names = set()  # every name that exists (NODATA, not NXDOMAIN)
        self.queries = []
        self.lock = threading.Lock()
        self._udp = self._tcp = None
        self._threads = []

    # -- the table
    def add_a(self, name, addr='127.0.0.1'):
        with self.lock:
            self.a.setdefault(_norm(name), []).append(addr)
            self.names.add(_norm(name))
        return self

    def add_srv(self, name, target, port, priority=0, weight=5):
        with self.lock:
            self.srv.setdefault(_norm(name), []).append(
                (priority, weight, port, _norm(target) or '.'))
            self.names.add(_norm(name))
        return self

    def add_xmpp_server(self, domain, target, port, addr='127.0.0.1'):
        """SRV _xmpp-server._tcp.DOMAIN -> TARGET:PORT, and TARGET's A
        record (unless TARGET is an IP literal, left to the asker)."""
        self.add_srv('_xmpp-server._tcp.' + domain, target, port)
        try:
            socket.inet_aton(target)
        except OSError:
            self.add_a(target, addr)
        return self

    def asked(self, name, qtype=None):
        """The (name, type, transport) queries made for NAME."""
        with self.lock:
            return [x for x in self.queries if x[0] == _norm(name) and
                    (qtype is None or x[1] == qtype)]

    # -- answers
    def answer(self, query, transport='udp'):
        """The response bytes for the query bytes (None: drop it)."""
        if len(query) < 12:
            return None
        qid, flags, qd, _an, _ns, ar = struct.unpack('>HHHHHH', query[:12])
        if flags & 0x8000:
            return None  # a response: ignore
        opcode = (flags >> 11) & 0xF
        rd = flags & 0x0100
        try:
            if qd != 1:
                raise ValueError('want one question')
            qname, off = _decode_name(query, 12)
            qtype, qclass = struct.unpack('>HH', query[off:off + 4])
            question = query[12:off + 4]
        except (ValueError, struct.error):
            return struct.pack('>HHHHHH', qid, 0x8000 | RCODE_FORMERR, 0, 0,
                               0, 0)
        name = _norm(qname)
        tname = TYPE_NAMES.get(qtype, str(qtype))
        with self.lock:
            self.queries.append((name, tname, transport))
            srv = list(self.srv.get(name, ()))
            a = list(self.a.get(name, ()))
            exists = name in self.names
        answers = []
        rcode = RCODE_OK
        if opcode != 0:
            rcode = RCODE_NOTIMP
        elif qclass not in (1, 255):
            rcode = RCODE_NXDOMAIN
        elif not exists:
            rcode = RCODE_NXDOMAIN
        else:
            if qtype in (TYPE_SRV, 255):
                for prio, weight, port, target in srv:
                    rdata = struct.pack('>HHH', prio, weight, port) + \
                        _encode_name(target)
                    answers.append((TYPE_SRV, rdata))
            if qtype in (TYPE_A, 255):
                for addr in a:
                    answers.append((TYPE_A, socket.inet_aton(addr)))
        # QR, AA, RA, and RD as asked
        rflags = 0x8000 | (opcode << 11) | 0x0400 | rd | 0x0080 | rcode
        out = struct.pack('>HHHHHH', qid, rflags, 1, len(answers), 0,
                          1 if ar else 0)
        out += question
        for rtype, rdata in answers:
            out += b'\xc0\x0c' + struct.pack('>HHIH', rtype, 1, TTL,
                                             len(rdata)) + rdata
        if ar:
            # an EDNS0 OPT record back when one came (4096-byte UDP)
            out += b'\0' + struct.pack('>HHIH', TYPE_OPT, 4096, 0, 0)
        return out

    # -- serving
    def start(self):
        responder = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                r = responder.answer(data, 'udp')
                if r is not None:
                    if len(r) > 512 and not _has_opt(data):
                        r = r[:2] + bytes([r[2] | 0x02]) + r[3:12]  # TC
                    sock.sendto(r, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(10)
                try:
                    while True:
                        n = _recv_exact(self.request, 2)
                        if n is None:
                            return
                        (ln,) = struct.unpack('>H', n)
                        data = _recv_exact(self.request, ln)
                        if data is None:
                            return
                        r = responder.answer(data, 'tcp')
                        if r is None:
                            return
                        self.request.sendall(struct.pack('>H', len(r)) + r)
                except OSError:
                    return

        class UdpServer(socketserver.ThreadingUDPServer):
            daemon_threads = True
            allow_reuse_address = False

        class TcpServer(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        last = None
        for _ in range(50):
            try:
                udp = UdpServer((self.host, self.want_port), Udp)
            except OSError as e:
                last = e
                continue
            port = udp.server_address[1]
            try:
                tcp = TcpServer((self.host, port), Tcp)
            except OSError as e:
                last = e
                udp.server_close()
                if self.want_port:
                    break
                continue
            self._udp, self._tcp, self.port = udp, tcp, port
            for s in (udp, tcp):
                t = threading.Thread(target=s.serve_forever,
                                     kwargs={'poll_interval': 0.2},
                                     daemon=True)
                t.start()
                self._threads.append(t)
            return self
        raise RuntimeError('DNS responder: no port: %s' % last)

    def stop(self):
        for s in (self._udp, self._tcp):
            if s is not None:
                s.shutdown()
                s.server_close()
        self._udp = self._tcp = None
        for t in self._threads:
            t.join(5)
        self._threads = []

    @property
    def address(self):
        """HOST:PORT, as `icroot dev --s2s-dns` takes it."""
        return '%s:%d' % (self.host, self.port)

    @property
    def unbound_forward(self):
        """HOST@PORT, as libunbound's forward address takes it."""
        return '%s@%d' % (self.host, self.port)


def _has_opt(query):
    try:
        return struct.unpack('>H', query[10:12])[0] > 0
    except struct.error:
        return False


def _recv_exact(sock, n):
    buf = b''
    while len(buf) < n:
        try:
            d = sock.recv(n - len(buf))
        except OSError:
            return None
        if not d:
            return None
        buf += d
    return buf


def query(name, qtype='SRV', server=('127.0.0.1', 53), tcp=False,
          timeout=3.0):
    """A minimal stub query, for the responder's own checks: returns
    (rcode, [(type, rdata bytes)])."""
    codes = {v: k for k, v in TYPE_NAMES.items()}
    q = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0) + \
        _encode_name(name) + struct.pack('>HH', codes[qtype], 1)
    if tcp:
        with socket.create_connection(server, timeout=timeout) as s:
            s.sendall(struct.pack('>H', len(q)) + q)
            (ln,) = struct.unpack('>H', _recv_exact(s, 2))
            r = _recv_exact(s, ln)
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, server)
            r, _ = s.recvfrom(65535)
    _qid, flags, qd, an, _ns, _ar = struct.unpack('>HHHHHH', r[:12])
    off = 12
    for _ in range(qd):
        _n, off = _decode_name(r, off)
        off += 4
    out = []
    for _ in range(an):
        _n, off = _decode_name(r, off)
        rtype, _cls, _ttl, ln = struct.unpack('>HHIH', r[off:off + 10])
        off += 10
        out.append((TYPE_NAMES.get(rtype, rtype), r[off:off + ln]))
        off += ln
    return flags & 0xF, out


if __name__ == '__main__':
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    d = DnsResponder(port=int(sys.argv[1]))
    for arg in sys.argv[2:]:
        name, val = arg.split('=', 1)
        if ':' in val:
            target, port = val.rsplit(':', 1)
            d.add_srv(name, target, int(port))
        else:
            d.add_a(name, val)
    d.start()
    print('serving on %s' % d.address)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        d.stop()
