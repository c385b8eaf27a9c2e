"""One implementation of "a private network with VPC endpoints", shared by two templates.

The development account's environment and the staging/production accounts' target
network both call :func:`add_private_network` and then :func:`add_s3_gateway_endpoint`;
they differ only in data: how many availability zones, which interface endpoints, and
which buckets the S3 gateway endpoint admits.

What is fixed when the template is built: the number of AZs (structure: one subnet, one
route table per AZ) and the list of interface endpoints. What is a parameter: CIDRs, an
existing VPC to reuse instead, the optional NAT gateway, the flow-log retention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from awacs import kms as awacs_kms
from awacs import logs as awacs_logs
from awacs.aws import Allow, ArnLike, Condition, Policy, PolicyDocument, Principal, Statement
from troposphere import (
    And,
    Equals,
    GetAtt,
    GetAZs,
    If,
    Join,
    Not,
    Parameter,
    Ref,
    Select,
    Sub,
    Template,
)
from troposphere import Condition as TemplateCondition
from troposphere.ec2 import (
    EIP,
    VPC,
    FlowLog,
    InternetGateway,
    NatGateway,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupEgress,
    SecurityGroupIngress,
    Subnet,
    SubnetRouteTableAssociation,
    VPCEndpoint,
    VPCGatewayAttachment,
)
from troposphere.iam import PolicyType, Role
from troposphere.kms import Key
from troposphere.logs import LogGroup

from generator.keys import add_key, environment_key_alias, key_policy
from generator.outputs import publish
from generator.parameters import Environment, choice_parameter, partition_arn, string_parameter
from generator.policies import document, service_trust

CREATE_VPC = "CreateVpc"
CREATE_NAT = "CreateNatGateway"
LOG_RETENTION_DAYS = (30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
# CIDR of one private subnet per AZ in the default VPC CIDR (10.0.0.0/16): three /19s.
DEFAULT_PRIVATE_CIDRS = ("10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19")
DEFAULT_PUBLIC_CIDR = "10.0.224.0/24"
# Parameters added by add_network_parameters, in the order a form shows them.
NETWORK_PARAMETERS = (
    "VpcCidr",
    "PrivateSubnetCidrs",
    "EnableNatGateway",
    "PublicSubnetCidr",
    "ExistingVpcId",
    "ExistingPrivateSubnetIds",
    "ExistingRouteTableIds",
    "FlowLogRetentionDays",
)
CIDR_PATTERN = r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-8])$"
CIDR_CONSTRAINT = "an IPv4 CIDR block from /16 to /28"


@dataclass(frozen=True)
class InterfaceEndpointSpec:
    """One interface endpoint: logical-id stem and the service's name suffix.

    Most services are named ``com.amazonaws.<region>.<service>``; SageMaker's notebook and
    Studio endpoints are ``aws.sagemaker.<region>.<service>`` (``prefix="aws.sagemaker"``).
    """

    logical_name: str
    service: str
    prefix: str = "com.amazonaws"

    def service_name(self) -> Sub:
        return Sub(f"{self.prefix}.${{AWS::Region}}.{self.service}")


def endpoint_specs(*items: tuple[str, str] | tuple[str, str, str]) -> tuple[InterfaceEndpointSpec, ...]:
    """Interface endpoint specs from ``(logical_name, service[, prefix])`` tuples."""
    return tuple(InterfaceEndpointSpec(*item) for item in items)


# What every SageMaker workload in a private subnet calls, in either kind of account:
# credentials (STS), logs and metrics, its KMS keys, and its images (ECR API and layers).
WORKLOAD_INTERFACE_ENDPOINTS = endpoint_specs(
    ("Sts", "sts"),
    ("Logs", "logs"),
    ("Monitoring", "monitoring"),
    ("Kms", "kms"),
    ("EcrApi", "ecr.api"),
    ("EcrDkr", "ecr.dkr"),
)


@dataclass(frozen=True)
class NetworkParameters:
    vpc_cidr: Parameter
    private_subnet_cidrs: Parameter
    public_subnet_cidr: Parameter
    enable_nat: Parameter
    existing_vpc_id: Parameter
    existing_subnet_ids: Parameter
    existing_route_table_ids: Parameter
    flow_log_retention: Parameter


@dataclass
class Network:
    """What later builders need from the network: ids as CloudFormation expressions."""

    vpc_id: object
    private_subnet_ids: object
    route_table_ids: object
    workload_sg: SecurityGroup
    endpoint_sg: SecurityGroup
    flow_log_group: LogGroup
    flow_log_key: Key
    interface_endpoints: dict[str, VPCEndpoint] = field(default_factory=dict)
    s3_endpoint: VPCEndpoint | None = None
    created_subnets: list[Subnet] = field(default_factory=list)

    def endpoint(self, service: str) -> VPCEndpoint:
        """The interface endpoint of ``service`` (e.g. ``"kms"``)."""
        return self.interface_endpoints[service]


def add_network_parameters(template: Template, az_count: int) -> NetworkParameters:
    """CIDRs, the optional existing VPC, the NAT switch and the flow-log retention."""
    vpc_cidr = string_parameter(
        template,
        "VpcCidr",
        "CIDR of the VPC to create (ignored with ExistingVpcId)",
        CIDR_PATTERN,
        CIDR_CONSTRAINT,
        default="10.0.0.0/16",
    )
    private_cidrs = template.add_parameter(
        Parameter(
            "PrivateSubnetCidrs",
            Type="CommaDelimitedList",
            Default=",".join(DEFAULT_PRIVATE_CIDRS[:az_count]),
            Description=f"Exactly {az_count} CIDR blocks inside VpcCidr, one private subnet per availability zone",
        )
    )
    public_cidr = string_parameter(
        template,
        "PublicSubnetCidr",
        "CIDR of the one public subnet that holds the NAT gateway (only with EnableNatGateway=true)",
        CIDR_PATTERN,
        CIDR_CONSTRAINT,
        default=DEFAULT_PUBLIC_CIDR,
    )
    enable_nat = choice_parameter(
        template,
        "EnableNatGateway",
        "true: add one NAT gateway in a public subnet for outbound internet access (default: no internet path)",
        ["false", "true"],
        "false",
    )
    existing_vpc = string_parameter(
        template,
        "ExistingVpcId",
        "Reuse this VPC instead of creating one (then give ExistingPrivateSubnetIds and ExistingRouteTableIds)",
        r"^(vpc-[0-9a-f]{8,17})?$",
        "empty, or a VPC id such as vpc-0123456789abcdef0",
        default="",
    )
    existing_subnets = template.add_parameter(
        Parameter(
            "ExistingPrivateSubnetIds",
            Type="CommaDelimitedList",
            Default="",
            Description="With ExistingVpcId: its private subnet ids, at most one per availability zone",
        )
    )
    existing_route_tables = template.add_parameter(
        Parameter(
            "ExistingRouteTableIds",
            Type="CommaDelimitedList",
            Default="",
            Description="With ExistingVpcId: the route tables of those subnets (for the S3 gateway endpoint)",
        )
    )
    retention = template.add_parameter(
        Parameter(
            "FlowLogRetentionDays",
            Type="Number",
            Default=365,
            AllowedValues=list(LOG_RETENTION_DAYS),
            Description="Days to keep VPC flow logs",
        )
    )
    # Both tests, so that a linter resolving parameter defaults sees the existing-network
    # branches only with existing subnets; the rules below keep the two parameters together.
    template.add_condition(CREATE_VPC, And(Equals(Ref(existing_vpc), ""), Equals(Join("", Ref(existing_subnets)), "")))
    template.add_condition(CREATE_NAT, And(TemplateCondition(CREATE_VPC), Equals(Ref(enable_nat), "true")))
    template.add_rule(
        "ExistingNetworkIsComplete",
        {
            "RuleCondition": Not(Equals(Ref(existing_vpc), "")),
            "Assertions": [
                {
                    "Assert": Not(Equals(Join("", Ref(existing_subnets)), "")),
                    "AssertDescription": "ExistingVpcId is set: ExistingPrivateSubnetIds must list its private subnets",
                },
                {
                    "Assert": Not(Equals(Join("", Ref(existing_route_tables)), "")),
                    "AssertDescription": (
                        "ExistingVpcId is set: ExistingRouteTableIds must list the subnets' route tables"
                    ),
                },
                {
                    "Assert": Equals(Ref(enable_nat), "false"),
                    "AssertDescription": (
                        "EnableNatGateway=true is only for a VPC this stack creates; leave it false with ExistingVpcId"
                    ),
                },
            ],
        },
    )
    template.add_rule(
        "ExistingSubnetsNeedTheirVpc",
        {
            "RuleCondition": Not(Equals(Join("", Ref(existing_subnets)), "")),
            "Assertions": [
                {
                    "Assert": Not(Equals(Ref(existing_vpc), "")),
                    "AssertDescription": "ExistingPrivateSubnetIds is set: ExistingVpcId must name their VPC",
                }
            ],
        },
    )
    return NetworkParameters(
        vpc_cidr=vpc_cidr,
        private_subnet_cidrs=private_cidrs,
        public_subnet_cidr=public_cidr,
        enable_nat=enable_nat,
        existing_vpc_id=existing_vpc,
        existing_subnet_ids=existing_subnets,
        existing_route_table_ids=existing_route_tables,
        flow_log_retention=retention,
    )


def _add_vpc(template: Template, env: Environment, params: NetworkParameters, az_count: int):
    """The VPC, one private subnet and route table per AZ; all under ``CreateVpc``."""
    vpc = template.add_resource(
        VPC(
            "Vpc",
            Condition=CREATE_VPC,
            CidrBlock=Ref(params.vpc_cidr),
            EnableDnsHostnames=True,  # private DNS of interface endpoints needs both
            EnableDnsSupport=True,
            Tags=env.tags(Name=env.name_sub("vpc")),
        )
    )
    subnets, route_tables = [], []
    for index in range(az_count):
        number = index + 1
        subnet = template.add_resource(
            Subnet(
                f"PrivateSubnet{number}",
                Condition=CREATE_VPC,
                VpcId=Ref(vpc),
                AvailabilityZone=Select(index, GetAZs("")),
                CidrBlock=Select(index, Ref(params.private_subnet_cidrs)),
                MapPublicIpOnLaunch=False,
                Tags=env.tags(Name=env.name_sub(f"private-{number}")),
            )
        )
        route_table = template.add_resource(
            RouteTable(
                f"PrivateRouteTable{number}",
                Condition=CREATE_VPC,
                VpcId=Ref(vpc),
                Tags=env.tags(Name=env.name_sub(f"private-{number}")),
            )
        )
        template.add_resource(
            SubnetRouteTableAssociation(
                f"PrivateSubnet{number}RouteTableAssociation",
                Condition=CREATE_VPC,
                SubnetId=Ref(subnet),
                RouteTableId=Ref(route_table),
            )
        )
        subnets.append(subnet)
        route_tables.append(route_table)
    return vpc, subnets, route_tables


def _add_nat_gateway(template: Template, env: Environment, params: NetworkParameters, vpc: VPC, route_tables) -> None:
    """One public subnet with an internet gateway and a NAT gateway, under ``CreateNatGateway``."""
    gateway = template.add_resource(InternetGateway("InternetGateway", Condition=CREATE_NAT, Tags=env.tags()))
    attachment = template.add_resource(
        VPCGatewayAttachment(
            "InternetGatewayAttachment", Condition=CREATE_NAT, VpcId=Ref(vpc), InternetGatewayId=Ref(gateway)
        )
    )
    public_subnet = template.add_resource(
        Subnet(
            "PublicSubnet",
            Condition=CREATE_NAT,
            VpcId=Ref(vpc),
            AvailabilityZone=Select(0, GetAZs("")),
            CidrBlock=Ref(params.public_subnet_cidr),
            MapPublicIpOnLaunch=False,
            Tags=env.tags(Name=env.name_sub("public")),
        )
    )
    public_routes = template.add_resource(
        RouteTable("PublicRouteTable", Condition=CREATE_NAT, VpcId=Ref(vpc), Tags=env.tags(Name=env.name_sub("public")))
    )
    template.add_resource(
        SubnetRouteTableAssociation(
            "PublicSubnetRouteTableAssociation",
            Condition=CREATE_NAT,
            SubnetId=Ref(public_subnet),
            RouteTableId=Ref(public_routes),
        )
    )
    template.add_resource(
        Route(
            "PublicDefaultRoute",
            Condition=CREATE_NAT,
            DependsOn=[attachment.title],
            RouteTableId=Ref(public_routes),
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=Ref(gateway),
        )
    )
    address = template.add_resource(
        EIP("NatGatewayAddress", Condition=CREATE_NAT, DependsOn=[attachment.title], Domain="vpc", Tags=env.tags())
    )
    nat = template.add_resource(
        NatGateway(
            "NatGateway",
            Condition=CREATE_NAT,
            AllocationId=GetAtt(address, "AllocationId"),
            SubnetId=Ref(public_subnet),
            Tags=env.tags(Name=env.name_sub("nat")),
        )
    )
    for number, route_table in enumerate(route_tables, start=1):
        template.add_resource(
            Route(
                f"PrivateDefaultRoute{number}",
                Condition=CREATE_NAT,
                RouteTableId=Ref(route_table),
                DestinationCidrBlock="0.0.0.0/0",
                NatGatewayId=Ref(nat),
            )
        )


def _flow_log_key_policy() -> Policy:
    """The account administers the key; CloudWatch Logs may use it for this account's log groups only."""
    logs_principal = Sub("logs.${AWS::Region}.${AWS::URLSuffix}")
    return key_policy(
        Statement(
            Sid="AllowCloudWatchLogsOfThisAccount",
            Effect=Allow,
            Principal=Principal("Service", [logs_principal]),
            Action=[
                awacs_kms.Encrypt,
                awacs_kms.Decrypt,
                awacs_kms.ReEncryptFrom,
                awacs_kms.ReEncryptTo,
                awacs_kms.GenerateDataKey,
                awacs_kms.GenerateDataKeyWithoutPlaintext,
            ],
            Resource=["*"],
            Condition=Condition(ArnLike({"kms:EncryptionContext:aws:logs:arn": partition_arn("logs", "log-group:*")})),
        )
    )


def _add_flow_logs(template: Template, env: Environment, params: NetworkParameters, vpc_id) -> tuple[LogGroup, Key]:
    """VPC flow logs of all traffic into a KMS-encrypted log group."""
    # Retained (as every key) so that the retained log group stays readable.
    key = add_key(
        template,
        "FlowLogKey",
        Sub("${EnvName}-${EnvType}: encrypts the VPC flow log group"),
        env.tags(),
        _flow_log_key_policy(),
        alias=environment_key_alias("flow-logs"),
        pending_window_days=30,
    )
    group = template.add_resource(
        LogGroup(
            "FlowLogGroup",
            DeletionPolicy="Retain",  # audit evidence outlives the stack
            UpdateReplacePolicy="Retain",
            KmsKeyId=GetAtt(key, "Arn"),
            RetentionInDays=Ref(params.flow_log_retention),
            Tags=env.tags(),
        )
    )
    role = template.add_resource(
        Role(
            "FlowLogRole",
            Description="Lets VPC Flow Logs deliver to the environment's flow log group",
            AssumeRolePolicyDocument=service_trust("vpc-flow-logs.amazonaws.com", source_account=Ref("AWS::AccountId")),
            Tags=env.tags(),
        )
    )
    template.add_resource(
        PolicyType(
            "FlowLogRolePolicy",
            PolicyName="deliver-flow-logs",
            Roles=[Ref(role)],
            PolicyDocument=document(
                Statement(
                    Sid="WriteFlowLogGroup",
                    Effect=Allow,
                    Action=[
                        awacs_logs.CreateLogStream,
                        awacs_logs.PutLogEvents,
                        awacs_logs.DescribeLogStreams,
                    ],
                    Resource=[GetAtt(group, "Arn")],
                ),
                Statement(
                    Sid="DescribeLogGroups",
                    Effect=Allow,
                    Action=[awacs_logs.DescribeLogGroups],
                    Resource=["*"],  # no resource-level permissions
                ),
            ),
        )
    )
    template.add_resource(
        FlowLog(
            "VpcFlowLog",
            ResourceId=vpc_id,
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=Ref(group),
            DeliverLogsPermissionArn=GetAtt(role, "Arn"),
            Tags=env.tags(),
        )
    )
    return group, key


def _add_security_groups(template: Template, env: Environment, vpc_id) -> tuple[SecurityGroup, SecurityGroup]:
    """Workload SG (ingress only from itself) and endpoint SG (HTTPS only from the workload SG)."""
    workload = template.add_resource(
        SecurityGroup(
            "WorkloadSecurityGroup",
            GroupDescription="SageMaker workloads: ingress only from members of this group",
            VpcId=vpc_id,
            SecurityGroupEgress=[
                {
                    # Not the VPC CIDR and the S3 prefix list: CloudFormation cannot look up the
                    # region's S3 prefix list id. Without NAT no route leads elsewhere; with NAT,
                    # HTTPS out is what EnableNatGateway is for (README, Security, Controls).
                    "Description": (
                        "HTTPS to the VPC endpoints and the S3 gateway; to the internet only with EnableNatGateway"
                    ),
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "CidrIp": "0.0.0.0/0",
                }
            ],
            Tags=env.tags(Name=env.name_sub("workload")),
        )
    )
    # Members reach each other on every protocol, both ways.
    for title, rule, peer in (
        ("WorkloadSecurityGroupSelfIngress", SecurityGroupIngress, "SourceSecurityGroupId"),
        ("WorkloadSecurityGroupSelfEgress", SecurityGroupEgress, "DestinationSecurityGroupId"),
    ):
        template.add_resource(
            rule(
                title,
                GroupId=GetAtt(workload, "GroupId"),
                **{peer: GetAtt(workload, "GroupId")},
                IpProtocol="-1",
                Description="All traffic between members (distributed training, Studio apps)",
            )
        )
    endpoints = template.add_resource(
        SecurityGroup(
            "EndpointSecurityGroup",
            GroupDescription="Interface VPC endpoints: HTTPS only from the workload security group",
            VpcId=vpc_id,
            SecurityGroupIngress=[
                {
                    "Description": "HTTPS from the workload security group",
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "SourceSecurityGroupId": GetAtt(workload, "GroupId"),
                }
            ],
            # Endpoints only answer; replace the default allow-all egress with a rule that matches nothing.
            SecurityGroupEgress=[
                {
                    "Description": "No outbound traffic",
                    "IpProtocol": "icmp",
                    "FromPort": 252,
                    "ToPort": 86,
                    "CidrIp": "255.255.255.255/32",
                }
            ],
            Tags=env.tags(Name=env.name_sub("endpoints")),
        )
    )
    return workload, endpoints


def _add_interface_endpoints(template: Template, env: Environment, network: Network, specs) -> None:
    for spec in specs:
        network.interface_endpoints[spec.service] = template.add_resource(
            VPCEndpoint(
                f"{spec.logical_name}Endpoint",
                VpcId=network.vpc_id,
                ServiceName=spec.service_name(),
                VpcEndpointType="Interface",
                PrivateDnsEnabled=True,
                SubnetIds=network.private_subnet_ids,
                SecurityGroupIds=[GetAtt(network.endpoint_sg, "GroupId")],
                Tags=env.tags(Name=env.name_sub(spec.service.replace(".", "-"))),
            )
        )


def add_private_network(template: Template, env: Environment, *, az_count: int, interface_endpoints) -> Network:
    """Private subnets (new VPC or existing by parameter), NAT option, flow logs, SGs, interface endpoints.

    ``az_count`` (2 or 3) is structure, fixed at build time. The S3 gateway endpoint is
    added afterwards with :func:`add_s3_gateway_endpoint`, once its policy's buckets exist.
    """
    if az_count not in (2, 3):
        raise ValueError(f"az_count must be 2 or 3, got {az_count!r}")
    params = add_network_parameters(template, az_count)
    vpc, subnets, route_tables = _add_vpc(template, env, params, az_count)
    _add_nat_gateway(template, env, params, vpc, route_tables)
    vpc_id = If(CREATE_VPC, Ref(vpc), Ref(params.existing_vpc_id))
    flow_log_group, flow_log_key = _add_flow_logs(template, env, params, vpc_id)
    workload_sg, endpoint_sg = _add_security_groups(template, env, vpc_id)
    network = Network(
        vpc_id=vpc_id,
        private_subnet_ids=If(CREATE_VPC, [Ref(s) for s in subnets], Ref(params.existing_subnet_ids)),
        route_table_ids=If(CREATE_VPC, [Ref(r) for r in route_tables], Ref(params.existing_route_table_ids)),
        workload_sg=workload_sg,
        endpoint_sg=endpoint_sg,
        flow_log_group=flow_log_group,
        flow_log_key=flow_log_key,
        created_subnets=subnets,
    )
    _add_interface_endpoints(template, env, network, interface_endpoints)
    return network


def add_s3_gateway_endpoint(
    template: Template, env: Environment, network: Network, policy: PolicyDocument
) -> VPCEndpoint:
    """The S3 gateway endpoint on every private route table, limited by ``policy``."""
    network.s3_endpoint = template.add_resource(
        VPCEndpoint(
            "S3GatewayEndpoint",
            VpcId=network.vpc_id,
            ServiceName=Sub("com.amazonaws.${AWS::Region}.s3"),
            VpcEndpointType="Gateway",
            RouteTableIds=network.route_table_ids,
            PolicyDocument=policy,
            Tags=env.tags(Name=env.name_sub("s3")),
        )
    )
    return network.s3_endpoint


def publish_network(template: Template, env: Environment, network: Network) -> None:
    """Outputs and SSM parameters under ``/<env-name>/<env-type>/network/`` (documented in the README)."""
    publish(template, env, "VpcId", network.vpc_id, "VPC of the environment", "network/vpc-id")
    publish(
        template,
        env,
        "PrivateSubnetIds",
        network.private_subnet_ids,
        "Private subnet ids, comma-separated",
        "network/private-subnet-ids",
        is_list=True,
    )
    publish(
        template,
        env,
        "WorkloadSecurityGroupId",
        GetAtt(network.workload_sg, "GroupId"),
        "Security group of SageMaker workloads (ingress only from itself)",
        "network/workload-security-group-id",
    )
    publish(
        template,
        env,
        "EndpointSecurityGroupId",
        GetAtt(network.endpoint_sg, "GroupId"),
        "Security group of the interface endpoints (HTTPS from the workload group)",
        "network/endpoint-security-group-id",
    )
    publish(template, env, "S3EndpointId", Ref(network.s3_endpoint), "S3 gateway endpoint id", "network/s3-endpoint-id")
    for service, endpoint in network.interface_endpoints.items():
        slug = service.replace(".", "-")
        publish(
            template,
            env,
            f"{endpoint.title}Id",
            Ref(endpoint),
            f"Interface endpoint id of {service}",
            f"network/{slug}-endpoint-id",
        )
