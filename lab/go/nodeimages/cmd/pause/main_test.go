package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the program under test: with this variable set it runs main.
const selfEnv = "AIC_PAUSE_TEST_MAIN"

func TestMain(m *testing.M) {
	switch os.Getenv(selfEnv) {
	case "main":
		main()
		return
	case "exit":
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestExitsZeroOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), selfEnv+"=main")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // let it install its handlers
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v: exit %v, want status 0", sig, err)
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%v: still running after 5 s", sig)
		}
	}
}

func TestKeepsRunningOnSIGCHLDAndReaps(t *testing.T) {
	sigs := make(chan os.Signal, 8)
	ready := make(chan struct{})
	result := make(chan int, 1)
	go func() { result <- run(sigs, ready) }()
	<-ready
	// A child that exits at once, not waited for by anybody but pause's reaper.
	pid, err := syscall.ForkExec(os.Args[0], []string{os.Args[0]},
		&syscall.ProcAttr{Env: append(os.Environ(), selfEnv+"=exit")})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Once reaped, the pid is gone: signal 0 fails with ESRCH.
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d was not reaped", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case code := <-result:
		t.Fatalf("run returned %d on SIGCHLD", code)
	default:
	}
	sigs <- syscall.SIGTERM
	if code := <-result; code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

func TestReapAllWithoutChildren(t *testing.T) {
	if n := reapAll(); n != 0 {
		t.Fatalf("reaped %d, want 0", n)
	}
}
