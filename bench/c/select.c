/*
 * Baseline for bench/pcsc-roundtrip.ts: the same SELECT round trip from C, straight on libpcsclite.
 * Usage: select-bench "<reader name>" <count>   → prints "median_us p90_us p99_us".
 */
#include <PCSC/winscard.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int n = atoi(argv[2]);
  SCARDCONTEXT ctx;
  SCARDHANDLE card;
  DWORD proto;
  if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS) return 3;
  if (SCardConnect(ctx, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &proto) != SCARD_S_SUCCESS) return 4;
  const SCARD_IO_REQUEST *pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
  /* SELECT the test card's AID (sim/test-card.ts). */
  BYTE select[] = {0x00, 0xA4, 0x04, 0x0C, 0x08, 0xF0, 0x63, 0x70, 0x73, 0x64, 0x54, 0x53, 0x54};
  BYTE resp[258];
  double *t = malloc(sizeof(double) * n);
  for (int i = -20; i < n; i++) {
    DWORD len = sizeof resp;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (SCardTransmit(card, pci, select, sizeof select, NULL, resp, &len) != SCARD_S_SUCCESS) return 5;
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (i >= 0) t[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
  }
  qsort(t, n, sizeof(double), cmp);
  printf("%.1f %.1f %.1f\n", t[n / 2], t[n * 9 / 10], t[n * 99 / 100]);
  SCardDisconnect(card, SCARD_LEAVE_CARD);
  SCardReleaseContext(ctx);
  free(t);
  return 0;
}
