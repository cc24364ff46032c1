module github.com/pytest-aiconformance/lab/nodeimages

go 1.26.6
