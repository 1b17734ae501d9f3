/* What starting a process costs, apart from anything a server does: a program that
 * returns at once. bench/run builds it with the C library the shipped build links in
 * (glibc, static-pie) and, when musl-gcc is installed, with musl, and the benchmark
 * prints the CPU time and page faults of each (README "Performance"). */
int main(void) { return 0; }
