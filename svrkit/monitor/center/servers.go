package center

import (
	"context"

	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// IngestServer returns the center as the agents' service, for
// monitorpb.RegisterMonitorIngestServer.
func (c *Center) IngestServer() monitorpb.MonitorIngestServer { return ingestServer{c: c} }

// QueryServer returns the center as the query service, for
// monitorpb.RegisterMonitorQueryServer.
func (c *Center) QueryServer() monitorpb.MonitorQueryServer { return queryServer{c: c} }

type ingestServer struct {
	monitorpb.UnimplementedMonitorIngestServer
	c *Center
}

func (s ingestServer) Report(ctx context.Context, req *monitorpb.ReportRequest) (*monitorpb.ReportReply, error) {
	return s.c.Report(req)
}

type queryServer struct {
	monitorpb.UnimplementedMonitorQueryServer
	c *Center
}

func (s queryServer) ListSeries(ctx context.Context, req *monitorpb.ListSeriesRequest) (*monitorpb.ListSeriesReply, error) {
	return s.c.ListSeries(req), nil
}

func (s queryServer) Query(ctx context.Context, req *monitorpb.QueryRequest) (*monitorpb.QueryReply, error) {
	return s.c.Query(req)
}

func (s queryServer) ListAlerts(ctx context.Context, req *monitorpb.ListAlertsRequest) (*monitorpb.ListAlertsReply, error) {
	return s.c.Alerts(), nil
}
