module joingate/bench-outbound

go 1.19
