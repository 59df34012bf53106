#ifndef KVB_CEPOLL_SHIM_H
#define KVB_CEPOLL_SHIM_H
// epoll for `kvb-bench floor` (Glibc's Swift module does not include it).
#include <sys/epoll.h>
#endif
