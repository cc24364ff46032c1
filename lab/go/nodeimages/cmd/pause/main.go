// Command pause is the lab's pod placeholder: it sleeps until SIGTERM or SIGINT and exits 0.
//
// It stands in for registry.k8s.io/pause, which cannot be pulled here. As a pod's first
// process it may inherit orphans, so it reaps every child that exits (SIGCHLD) instead of
// leaving zombies behind.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("pause (aic-lab)")
		return
	}
	os.Exit(run(make(chan os.Signal, 8), nil))
}

// run waits for a terminating signal on sigs, reaping children on SIGCHLD; ready (when not
// nil) is closed once the handlers are installed, for tests. It returns the exit status.
func run(sigs chan os.Signal, ready chan<- struct{}) int {
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	if ready != nil {
		close(ready)
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reapAll()
		default:
			signal.Stop(sigs)
			return 0
		}
	}
	return 0
}

// reapAll collects every child that has exited; it returns how many it reaped.
func reapAll() int {
	n := 0
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}
