/*
 * delay-line LISTEN_IP:PORT TARGET_IP:PORT DELAY_US
 *
 * A TCP forwarder that holds every read for DELAY_US before writing it on, in both
 * directions: a request/response pair gains 2 x DELAY_US, as over a link of that one-way
 * delay (the cold-start bench's stand-in for `netem delay`, which this kernel lacks).
 * Reads are queued with their due time, so bulk data flows at full rate, only later.
 * One thread, epoll + a timerfd (nanosecond deadlines, timer slack 1 us). At most
 * QUEUE_MAX bytes wait per direction; beyond that the source is not read (back-pressure).
 * Prints "listening" on stdout once bound. Built by the bench with `gcc -O2`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define READ_MAX (64 * 1024)
#define QUEUE_MAX (8 * 1024 * 1024)

struct chunk { struct chunk *next; uint64_t due; size_t len, off; char data[]; };
struct conn;
struct dir { int from, to; struct chunk *head, *tail; size_t queued; int eof, fin_due, shut; uint64_t fin_at; };
struct end { struct conn *c; int side; uint32_t events; };
struct conn { struct conn *next, *prev; int fd[2], dead; struct dir d[2]; struct end e[2]; };

static int ep, tfd;
static uint64_t delay_ns;
static struct conn *conns;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static int parse(const char *s, struct sockaddr_in *a) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || colon - s >= (long)sizeof host) return -1;
  memcpy(host, s, colon - s);
  host[colon - s] = 0;
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(atoi(colon + 1));
  return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

/* Interest of socket `side`: read while its outgoing direction has room, write while the other direction has due bytes blocked. */
static void update(struct conn *c, int side, uint64_t now) {
  struct dir *out = &c->d[side], *in = &c->d[!side];
  struct epoll_event ev = { .events = 0, .data.ptr = &c->e[side] };
  if (!out->eof && out->queued < QUEUE_MAX) ev.events |= EPOLLIN;
  if (in->head && in->head->due <= now) ev.events |= EPOLLOUT;
  if (ev.events != c->e[side].events) epoll_ctl(ep, EPOLL_CTL_MOD, c->fd[side], &ev);
  c->e[side].events = ev.events;
}

/* Marks `c` closed; it is freed after the current batch of events (which may still name it). */
static void close_conn(struct conn *c) {
  c->dead = 1;
}

static void free_conn(struct conn *c) {
  for (int i = 0; i < 2; i++) {
    close(c->fd[i]);
    for (struct chunk *k = c->d[i].head, *n; k; k = n) { n = k->next; free(k); }
  }
  if (c->prev) c->prev->next = c->next; else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c);
}

/* Writes what is due in direction i. Returns -1 when the connection was closed. */
static int flush(struct conn *c, int i, uint64_t now) {
  struct dir *d = &c->d[i];
  while (d->head && d->head->due <= now) {
    struct chunk *k = d->head;
    ssize_t n = write(d->to, k->data + k->off, k->len - k->off);
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) { close_conn(c); return -1; }
    k->off += n;
    if (k->off < k->len) break;
    d->queued -= k->len;
    d->head = k->next;
    if (!d->head) d->tail = NULL;
    free(k);
  }
  if (d->fin_due && !d->head && !d->shut && d->fin_at <= now) {
    shutdown(d->to, SHUT_WR);
    d->shut = 1;
    if (c->d[!i].shut) { close_conn(c); return -1; }
  }
  return 0;
}

/* Wakes us when the next chunk not yet tried (due after `now`) is due; the tried ones wait for EPOLLOUT. */
static void arm_timer(uint64_t now) {
  uint64_t next = 0;
  for (struct conn *c = conns; c; c = c->next)
    for (int i = 0; i < 2 && !c->dead; i++) {
      struct dir *d = &c->d[i];
      uint64_t t = d->head ? d->head->due : (d->fin_due && !d->shut ? d->fin_at : 0);
      if (t && t > now && (!next || t < next)) next = t;
    }
  struct itimerspec its = { 0 };
  if (next) { its.it_value.tv_sec = next / 1000000000u; its.it_value.tv_nsec = next % 1000000000u; }
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_read(struct conn *c, int side) {
  struct dir *d = &c->d[side];
  if (c->dead || d->eof) return;
  struct chunk *k = malloc(sizeof *k + READ_MAX);
  ssize_t n = read(c->fd[side], k->data, READ_MAX);
  if (n < 0 && errno == EAGAIN) { free(k); return; }
  if (n <= 0) {
    free(k);
    if (n < 0) { close_conn(c); return; }
    d->eof = d->fin_due = 1;
    d->fin_at = now_ns() + delay_ns;
    return;
  }
  if (n < READ_MAX / 2) k = realloc(k, sizeof *k + n);
  k->next = NULL; k->len = n; k->off = 0; k->due = now_ns() + delay_ns;
  if (d->tail) d->tail->next = k; else d->head = k;
  d->tail = k;
  d->queued += n;
}

static void on_accept(int lfd, const struct sockaddr_in *target) {
  int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
  if (cfd < 0) return;
  int ufd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (ufd < 0 || connect(ufd, (const struct sockaddr *)target, sizeof *target) < 0) {
    close(cfd);
    if (ufd >= 0) close(ufd);
    return;
  }
  fcntl(ufd, F_SETFL, fcntl(ufd, F_GETFL) | O_NONBLOCK);
  struct conn *c = calloc(1, sizeof *c);
  c->fd[0] = cfd; c->fd[1] = ufd;
  for (int i = 0; i < 2; i++) {
    setsockopt(c->fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->d[i].from = c->fd[i]; c->d[i].to = c->fd[!i];
    c->e[i].c = c; c->e[i].side = i; c->e[i].events = EPOLLIN;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->e[i] };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[i], &ev);
  }
  c->next = conns;
  if (conns) conns->prev = c;
  conns = c;
}

int main(int argc, char **argv) {
  struct sockaddr_in listen_at, target;
  if (argc != 4 || parse(argv[1], &listen_at) || parse(argv[2], &target)) {
    fprintf(stderr, "usage: delay-line LISTEN_IP:PORT TARGET_IP:PORT DELAY_US\n");
    return 2;
  }
  delay_ns = strtoull(argv[3], NULL, 10) * 1000u;
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_TIMERSLACK, 1UL);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&listen_at, sizeof listen_at) < 0 || listen(lfd, 128) < 0) { perror("delay-line: bind"); return 1; }
  ep = epoll_create1(0);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  static int timer_tag;
  ev.data.ptr = &timer_tag;
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) { on_accept(lfd, &target); continue; }
      if (evs[i].data.ptr == &timer_tag) { uint64_t x; (void)!read(tfd, &x, sizeof x); continue; }
      struct end *e = evs[i].data.ptr;
      if (evs[i].events & EPOLLERR) close_conn(e->c);
      else if (evs[i].events & (EPOLLIN | EPOLLHUP)) on_read(e->c, e->side);
    }
    /* Everything due by `now` goes out (or, blocked, waits for EPOLLOUT); the timer wakes us for
       what is due later. One `now` for all three, so no chunk falls between them. */
    uint64_t now = now_ns();
    for (struct conn *c = conns, *next; c; c = next) {
      next = c->next;
      if (!c->dead && flush(c, 0, now) == 0 && flush(c, 1, now) == 0) {
        update(c, 0, now);
        update(c, 1, now);
      }
      if (c->dead) free_conn(c);
    }
    arm_timer(now);
  }
}
