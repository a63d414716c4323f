package main

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/channels/redis"
)

// nodeIDPattern keeps a node id to what Redis records, logs and metrics carry without quoting.
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// minNodeTimeout keeps heartbeats (a sixth of the timeout) from flooding Redis.
const minNodeTimeout = time.Second

func (o *options) validateCluster() error {
	if o.RedisURL == "" {
		return nil
	}
	switch {
	case o.NodeID != "" && !nodeIDPattern.MatchString(o.NodeID):
		return fmt.Errorf("node_id (HERALD_NODE_ID) %q must be 1 to 64 letters, digits, '.', '_' or '-'", o.NodeID)
	case !nodeIDPattern.MatchString(o.RedisPrefix):
		return fmt.Errorf("redis_prefix (HERALD_REDIS_PREFIX) %q must be 1 to 64 letters, digits, '.', '_' or '-'", o.RedisPrefix)
	case o.ClusterNodeTimeout.duration() < minNodeTimeout:
		return fmt.Errorf("cluster_node_timeout (HERALD_CLUSTER_NODE_TIMEOUT) must be at least %v", minNodeTimeout)
	}
	return nil
}

// nodeID is the configured node id, or the host name and listening port: stable across restarts,
// so that a node coming back after a crash takes over (and first clears) what it left in Redis.
func (o *options) nodeID() string {
	if o.NodeID != "" {
		return o.NodeID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "herald"
	}
	id := host
	if _, port, err := net.SplitHostPort(o.Addr); err == nil {
		id += "-" + port
	}
	if !nodeIDPattern.MatchString(id) {
		id = "herald-" + fmt.Sprint(os.Getpid())
	}
	return id
}

// openCluster connects to the cluster's Redis and puts its stores and broker under cfg. It returns
// nil without a redis_url.
func (o *options) openCluster(cfg *channels.Config, log *zerolog.Logger) (*redis.Cluster, error) {
	if o.RedisURL == "" {
		return nil, nil
	}
	cl, err := redis.Open(redis.Config{
		URL:          o.RedisURL,
		Prefix:       o.RedisPrefix,
		NodeID:       o.nodeID(),
		NodeTimeout:  o.ClusterNodeTimeout.duration(),
		RemovalDelay: o.WebhookDelay.duration(),
		Logger:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("redis_url (HERALD_REDIS_URL): %w", err)
	}
	cfg.Broker, cfg.Channels, cfg.Users, cfg.Cache, cfg.Quota = cl.Broker(), cl.Channels(), cl.Users(), cl.Cache(), cl.Quota()
	return cl, nil
}
